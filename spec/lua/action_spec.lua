-- outpost.action: every Postfix access(5) action, and the sanitising that
-- keeps request data from breaking the reply.
local A = require "outpost.action"

describe("outpost.action", function()
    it("has the plain actions", function()
        assert.equal("DUNNO", A.dunno().text)
        assert.equal("OK", A.ok().text)
        assert.equal("HOLD", A.hold().text)
        assert.equal("HOLD quarantined", A.hold("quarantined").text)
        assert.equal("DISCARD", A.discard().text)
        assert.equal("WARN look at %s", A.warn("look at %s").text)
        assert.equal("WARN look at this", A.warn("look at %s", "this").text)
        assert.equal("INFO seen", A.info("seen").text)
    end)

    it("formats reject and defer with an enhanced status code", function()
        assert.equal("REJECT 5.7.1 account alice is locked",
            A.reject("5.7.1", "account %s is locked", "alice").text)
        assert.equal("REJECT 5.7.1", A.reject("5.7.1").text)
        assert.equal("DEFER 4.3.0 try later", A.defer("4.3.0", "try later").text)
        assert.equal("DEFER_IF_PERMIT 4.7.1 later", A.defer_if_permit("4.7.1", "later").text)
        assert.equal("DEFER_IF_REJECT 4.7.1 later", A.defer_if_reject("4.7.1", "later").text)
    end)

    it("refuses a status code of the wrong class or shape", function()
        assert.has_error(function() A.reject("4.7.1", "x") end)
        assert.has_error(function() A.defer("5.7.1", "x") end)
        assert.has_error(function() A.reject("571", "x") end)
        assert.has_error(function() A.reject(nil, "x") end)
    end)

    it("gives an explicit SMTP code", function()
        assert.equal("451 4.3.5 directory down", A.reply(451, "4.3.5", "directory down").text)
        assert.equal("550 5.1.1 no such user", A.reply(550, "5.1.1", "no such user").text)
        assert.equal("reject", A.reply(550, "5.1.1").kind)
        assert.equal("defer", A.reply(451, "4.3.5").kind)
        assert.has_error(function() A.reply(250, "2.0.0", "ok") end)
        assert.has_error(function() A.reply(451, "5.3.5", "mismatch") end)
    end)

    it("builds message actions with checked arguments", function()
        assert.equal("PREPEND X-Outpost: checked", A.prepend("X-Outpost: checked").text)
        assert.equal("REDIRECT abuse@example.org", A.redirect("abuse@example.org").text)
        assert.equal("BCC archive@example.org", A.bcc("archive@example.org").text)
        assert.equal("FILTER smtp:[127.0.0.1]:10025", A.filter("smtp:[127.0.0.1]:10025").text)
        assert.has_error(function() A.prepend("no colon here") end)
        assert.has_error(function() A.redirect("not an address") end)
        assert.has_error(function() A.filter("nocolon") end)
    end)

    it("turns control characters into spaces so a reply cannot be split", function()
        local a = A.reject("5.7.1", "bad %s", "x\r\naction=OK\n\n")
        assert.is_nil(a.text:find("[\r\n%z]"))
        assert.equal("REJECT 5.7.1 bad x  action=OK  ", a.text)
        assert.is_nil(A.warn("a\0b").text:find("%z"))
    end)

    it("cuts long texts", function()
        local a = A.reject("5.7.1", string.rep("x", 5000))
        assert.is_true(#a.text <= #"REJECT 5.7.1 " + A.MAX_TEXT)
    end)

    it("marks its answers so the engine can tell them from other values", function()
        assert.is_true(A.is_action(A.dunno()))
        assert.is_false(A.is_action({ text = "DUNNO" }))
        assert.is_false(A.is_action("DUNNO"))
    end)
    it("replies: one table of answers, with or without an SMTP code, checked when made", function()
        local say = A.replies {
            no_tls = { 530, "5.7.10", "use TLS" },
            locked = { "5.7.1", "account %s is locked" },
            later = { "4.3.0", "directory down (%s)" },
        }
        assert.equal("530 5.7.10 use TLS", say.no_tls().text)
        assert.equal("reject", say.no_tls().kind)
        assert.equal("REJECT 5.7.1 account alice is locked", say.locked("alice").text)
        assert.equal("DEFER 4.3.0 directory down (timeout)", say.later("timeout").text)
        assert.is_true(A.is_action(say.later("x")))
        assert.has_error(function() return say.nonesuch() end)
        assert.has_error(function() A.replies { x = { 550, "4.7.1", "class differs" } } end)
        assert.has_error(function() A.replies { x = { "2.0.0", "no" } } end)
        assert.has_error(function() A.replies { x = { "5.7.1" } } end)
        assert.has_error(function() A.replies { x = "5.7.1 text" } end)
        assert.has_error(function() A.replies { x = { 600, "5.7.1", "no such code" } } end)
    end)

    it("replies: the same text for the same arguments, a new answer table for each call", function()
        local say = A.replies {
            fixed = { 451, "4.3.0", "try again" },
            one = { "5.7.1", "account %s\r\nis locked" },
            two = { "4.5.3", "limit %d of %s" },
        }
        local a, b = say.one("alice"), say.one("alice")
        assert.equal("REJECT 5.7.1 account alice  is locked", a.text) -- sanitised, as A.reject does
        assert.equal(A.reject("5.7.1", "account %s\r\nis locked", "alice").text, b.text)
        assert.are_not.equal(a, b) -- the pipeline and the milter add to an answer
        a:detail("only a's")
        assert.is_nil(rawget(b, "detail"))
        assert.equal("REJECT 5.7.1 account bob  is locked", say.one("bob").text)
        assert.equal("REJECT 5.7.1 account 7  is locked", say.one(7).text)
        assert.equal("DEFER 4.5.3 limit 5 of alice", say.two(5, "alice").text)
        assert.equal("DEFER 4.5.3 limit 6 of bob", say.two(6, "bob").text)
        assert.equal("451 4.3.0 try again", say.fixed().text)
        assert.equal("defer", say.fixed().kind)
        for i = 1, 2500 do -- past the cache's bound: every text still right
            assert.equal("REJECT 5.7.1 account u" .. i .. "  is locked", say.one("u" .. i).text)
        end
        assert.equal("REJECT 5.7.1 account alice  is locked", say.one("alice").text)
    end)
end)
