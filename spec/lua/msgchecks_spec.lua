-- message/inspect.lua (message.inspect): PO8, G3 and G4 over real message shapes.
local msgchecks = require "message.inspect"
local lists = require "outpost.lists"
local directory = require "site.directory"

local function crlf(s) return (s:gsub("\r?\n", "\r\n")) end

-- headers in order, from "Name: value" lines
local function H(...)
    local h = {}
    for _, line in ipairs { ... } do
        local name, value = line:match("^([^:]*):%s?(.*)$")
        h[#h + 1] = { name = name, value = value }
    end
    return h
end

-- alice in the fixture directory (spec/fixtures/ldap/README.md)
local ALICE = { ["alice@example.org"] = true, ["alice.adams@example.org"] = true,
    ["a.adams@lrz.example"] = true, ["alice@students.example.org"] = true,
    ["joerg@xn--bcher-kva.example"] = true }

describe("PO8: the header From is the user's", function()
    local ok_cases = {
        { "her address", "alice@example.org" },
        { "with a display name", "Alice Adams <alice@example.org>" },
        { "an alias", '"Adams, Alice" <alice.adams@example.org>' },
        { "an alias in another domain", "=?utf-8?Q?Alice_Ad=C3=A4ms?= <a.adams@lrz.example>" },
        { "upper case", "Alice <ALICE@Example.ORG>" },
        { "a +tag of hers", "alice+news@example.org" },
        { "the IDN domain as U-label", "Jörg <joerg@bücher.example>" },
        { "the IDN domain in capitals", "joerg@XN--BCHER-KVA.EXAMPLE" },
        { "her own address in the display name", '"alice@example.org" <alice@example.org>' },
        { "two of hers", "alice@example.org, a.adams@lrz.example" },
        { "a comment", "alice@example.org (Alice at work)" },
    }
    for _, c in ipairs(ok_cases) do
        it("passes " .. c[1], function()
            assert.is_nil((msgchecks.po8(H("From: " .. c[2]), ALICE)))
        end)
    end

    local bad_cases = {
        { "someone else's", "The Boss <boss@example.org>", "boss@example.org" },
        { "a lookalike domain", "alice@examp1e.org", "alice@examp1e.org" },
        { "her address shown, another used", '"alice@example.org" <mallory@evil.example>', "mallory@evil.example" },
        { "another address shown in the display name", '"boss@example.org" <alice@example.org>', "boss@example.org" },
        { "one of two is not hers", "alice@example.org, boss@example.org", "boss@example.org" },
        { "in a group", "Team: alice@example.org, boss@example.org;", "boss@example.org" },
        { "unreadable", "Alice <alice@example.org", "Alice <alice@example.org" },
        { "a trailing dot (no RFC 5322 domain)", "alice@example.org.", "alice@example.org." },
    }
    for _, c in ipairs(bad_cases) do
        it("refuses " .. c[1], function()
            local bad, why = msgchecks.po8(H("From: " .. c[2]), ALICE)
            assert.equal(c[3], bad)
            assert.is_string(why)
        end)
    end

    it("checks every From header", function()
        assert.equal("boss@example.org", (msgchecks.po8(H("From: alice@example.org", "From: boss@example.org"), ALICE)))
    end)

    it("accepts the senders as a list too", function()
        assert.is_nil((msgchecks.po8(H("From: Alice.Adams@example.org"), { "alice.adams@example.org" })))
    end)

    it("works with the directory's senders for alice", function()
        local alice = assert(directory.user("alice"))
        assert.is_nil((msgchecks.po8(H("From: A <a.adams@LRZ.example>"), alice.senders)))
        assert.equal("carol@example.org", (msgchecks.po8(H("From: carol@example.org"), alice.senders)))
    end)
end)

describe("G3: RFC 5322 header rules", function()
    local base = { "From: Alice <alice@example.org>", "To: bob@example.net",
        "Date: Sat, 28 Nov 2026 09:00:00 +0100", "Message-ID: <1234.5678@mail.example.org>", "Subject: hi" }
    local function with(changes)
        local lines = {}
        for _, l in ipairs(base) do
            local name = l:match("^[^:]+")
            if changes[name] == nil then lines[#lines + 1] = l
            elseif changes[name] then lines[#lines + 1] = changes[name] end
        end
        for _, l in ipairs(changes.extra or {}) do lines[#lines + 1] = l end
        return H(unpack(lines))
    end

    it("passes a well-formed message", function() assert.is_nil(msgchecks.g3(with {})) end)
    it("passes a group From with Sender", function()
        assert.is_nil(msgchecks.g3(with { From = "From: a@example.org, b@example.org", extra = { "Sender: a@example.org" } }))
    end)

    local rules = {
        { "no From", { From = false }, "from-missing" },
        { "no Date", { Date = false }, "date-missing" },
        { "no Message-ID", { ["Message-ID"] = false }, "message-id-missing" },
        { "two From", { extra = { "From: alice@example.org" } }, "duplicate", "2 From headers" },
        { "two Date", { extra = { "Date: Sat, 28 Nov 2026 09:00:01 +0100" } }, "duplicate", "Date" },
        { "two Subject", { extra = { "subject: again" } }, "duplicate", "Subject" },
        { "two To", { extra = { "TO: c@example.net" } }, "duplicate", "To" },
        { "two Message-ID", { extra = { "Message-Id: <x@y>" } }, "duplicate", "Message-ID" },
        { "two Reply-To", { extra = { "Reply-To: a@b.c", "Reply-To: d@e.f" } }, "duplicate", "Reply-To" },
        { "two Cc", { extra = { "Cc: a@b.c", "Cc: d@e.f" } }, "duplicate", "Cc" },
        { "two Sender", { extra = { "Sender: a@b.c", "Sender: d@e.f" } }, "duplicate", "Sender" },
        { "two In-Reply-To", { extra = { "In-Reply-To: <a@b>", "In-Reply-To: <c@d>" } }, "duplicate" },
        { "two References", { extra = { "References: <a@b>", "References: <c@d>" } }, "duplicate" },
        { "two Bcc", { extra = { "Bcc: a@b.c", "Bcc: d@e.f" } }, "duplicate", "Bcc" },
        { "a header name with a space", { extra = { "X Bad: 1" } }, "header-name" },
        { "a header name with 8-bit", { extra = { "X-Grüße: 1" } }, "header-name" },
        { "an empty header name", { extra = { ": 1" } }, "header-name" },
        { "an unreadable From", { From = "From: Alice <alice@example.org" }, "from-syntax" },
        { "several From addresses without Sender", { From = "From: a@example.org, b@example.org" }, "sender-missing" },
        { "a Message-ID without <>", { ["Message-ID"] = "Message-ID: 1234@example.org" }, "message-id-syntax" },
    }
    for _, c in ipairs(rules) do
        it("refuses " .. c[1], function()
            local v = msgchecks.g3(with(c[2]))
            assert.is_table(v)
            assert.equal(c[3], v.rule)
            if c[4] then assert.matches(c[4], v.reason, 1, true) end
        end)
    end

    -- issue 14 item 5: the syntax of the fields G3 reads, with the
    -- obsolete forms (RFC 5322 section 4) real mail uses
    local valid = {
        { "an obsolete Date (2-digit year, GMT, comments)", { Date = "Date: Sat, 28 Nov 26 08:00:00 GMT (UTC)" } },
        { "a Date with a military zone", { Date = "Date: 28 Nov 2026 08:00 Z" } },
        { "a line of 998 characters", { extra = { "X-Long: " .. string.rep("a", 998 - #"X-Long:") } } },
        { "long folded lines", { extra = { "X-Long: a\r\n " .. string.rep("b", 997) .. "\r\n " .. string.rep("c", 997) } } },
        { "a Message-ID with a domain literal", { ["Message-ID"] = "Message-ID: <x.y@[192.0.2.1]>" } },
        { "an obsolete Message-ID (quoted left, CFWS)", { ["Message-ID"] = 'Message-ID: < "a b" . c @ example.org > (x)' } },
        { "In-Reply-To and References", { extra = { "In-Reply-To: <a@b.example>",
            "References: <z@b.example>\r\n <a@b.example>" } } },
        { "an obsolete In-Reply-To with a phrase", { extra = { 'In-Reply-To: Your message of "Sat, 28 Nov" <a@b.example>' } } },
        { "To and Cc lists, groups, obsolete routes and empty elements", { To = "To: undisclosed-recipients:;",
            extra = { "Cc: A <a@b.example>,, Team: c@d.example, <@relay.example:e@f.example>;",
                "Reply-To: John Q. Public <jqp@example.org>", "Bcc:" } } },
        { "a Sender with a display name", { extra = { "Sender: Secretary <sec@example.org>" } } },
    }
    for _, c in ipairs(valid) do
        it("passes " .. c[1], function()
            local v = msgchecks.g3(with(c[2]))
            assert.is_nil(v, v and v.reason)
        end)
    end

    local syntax = {
        { "a Date that is not a date-time", { Date = "Date: 2026-11-28T09:00:00Z" }, "date-syntax", "Date header" },
        { "a Date with a wrong weekday", { Date = "Date: Sun, 28 Nov 2026 09:00:00 +0100" }, "date-syntax", "day of the week" },
        { "a Date in an unlisted zone", { Date = "Date: Sat, 28 Nov 2026 09:00:00 CET" }, "date-syntax" },
        { "a Date on 31 November", { Date = "Date: 31 Nov 2026 09:00:00 +0100" }, "date-syntax", "no such day" },
        { "a line of 999 characters", { extra = { "X-Long: " .. string.rep("a", 999 - #"X-Long:") } }, "line-length", "999" },
        { "a folded line of 1,200 characters", { Subject = "Subject: a\r\n " .. string.rep("b", 1199) }, "line-length", "Subject" },
        { "a Message-ID with two @", { ["Message-ID"] = "Message-ID: <a@b@c>" }, "message-id-syntax" },
        { "two Message-IDs in one", { ["Message-ID"] = "Message-ID: <a@b> <c@d>" }, "message-id-syntax", "allows one" },
        { "a Message-ID with a space", { ["Message-ID"] = "Message-ID: <a b@c>" }, "message-id-syntax" },
        { "an In-Reply-To with a bad id", { extra = { "In-Reply-To: <a@>" } }, "msg-id-syntax", "In-Reply-To" },
        { "References with commas", { extra = { "References: <a@b>, <c@d>" } }, "msg-id-syntax", "References" },
        { "a To that is not an address list", { To = "To: bob" }, "address-syntax", "To header" },
        { "an empty To", { To = "To:" }, "address-syntax", "To header" },
        { "a Cc with an unclosed angle", { extra = { "Cc: Bob <bob@example.net" } }, "address-syntax", "Cc header" },
        { "a Reply-To with two @", { extra = { "Reply-To: a@b@c" } }, "address-syntax", "Reply-To" },
        { "a Bcc with garbage", { extra = { "Bcc: <<>>" } }, "address-syntax", "Bcc" },
        { "a Sender with two addresses", { extra = { "Sender: a@example.org, b@example.org" } }, "sender-syntax", "allows one" },
        { "an unreadable Sender", { extra = { "Sender: a@" } }, "sender-syntax" },
    }
    for _, c in ipairs(syntax) do
        it("refuses " .. c[1], function()
            local v = msgchecks.g3(with(c[2]))
            assert.is_table(v)
            assert.equal(c[3], v.rule)
            if c[4] then assert.matches(c[4], v.reason, 1, true) end
        end)
    end

    it("reads a large header quickly (1,000 fields, long References)", function()
        local extra = {}
        for i = 1, 990 do extra[#extra + 1] = "X-Filler-" .. i .. ": " .. string.rep("x", 200) end
        local refs = {}
        for i = 1, 1000 do refs[#refs + 1] = "<id" .. i .. "@example.org>" end
        extra[#extra + 1] = "References: " .. table.concat(refs, "\r\n ")
        local t0 = os.clock()
        assert.is_nil(msgchecks.g3(with { extra = extra }))
        assert.is_true(os.clock() - t0 < 1)
    end)

    it("allows repeated non-singleton headers (Received, Comments, Keywords)", function()
        assert.is_nil(msgchecks.g3(with { extra = { "Received: a", "Received: b", "Comments: x", "Comments: y" } }))
    end)
end)

describe("G4: no links to URL shorteners", function()
    local shorteners = lists.domains("url_shorteners")

    it("the shipped list has the usual ones", function()
        for _, d in ipairs { "bit.ly", "tinyurl.com", "t.co", "goo.gl", "ow.ly", "is.gd", "buff.ly",
            "rebrand.ly", "cutt.ly", "tiny.cc" } do
            assert.is_true(shorteners[d], d)
        end
    end)

    local plain = H("Content-Type: text/plain; charset=utf-8")
    local text_cases = {
        { "an https link", "see https://bit.ly/3xYz now", "bit.ly" },
        { "an http link in capitals", "HTTP://BIT.LY/abc", "bit.ly" },
        { "with www.", "http://www.tinyurl.com/abc", "www.tinyurl.com" },
        { "a bare host/path", "go to t.co/abc.", "t.co" },
        { "a bare www. host", "at www.bit.ly today", "www.bit.ly" },
        { "in angle brackets", "<https://goo.gl/maps/x>", "goo.gl" },
        { "with user info and port", "https://x@is.gd:443/y", "is.gd" },
        { "a subdomain", "https://m.bit.ly/x", "m.bit.ly" },
        { "in a markdown link", "[here](https://cutt.ly/x)", "cutt.ly" },
        { "behind a redirect parameter", "https://example.org/r?u=https://ow.ly/x", "ow.ly" },
        { "a trailing dot", "http://bit.ly./x", "bit.ly" },
    }
    for _, c in ipairs(text_cases) do
        it("finds " .. c[1], function()
            local hit = msgchecks.g4(plain, crlf(c[2] .. "\n"), shorteners)
            assert.is_table(hit)
            assert.equal(c[3], hit.host)
        end)
    end

    local clean_cases = {
        { "a normal link", "https://www.example.org/x" },
        { "a host ending like a shortener", "https://notbit.ly/x and https://exat.co/y" },
        { "a path mentioning one", "https://example.org/bit.ly/x" },
        { "a bare domain without path (not a link)", "I use bit.ly sometimes" },
        { "an address", "write to someone@bit.ly.example.org" },
    }
    for _, c in ipairs(clean_cases) do
        it("passes " .. c[1], function()
            assert.is_nil((msgchecks.g4(plain, crlf(c[2] .. "\n"), shorteners)))
        end)
    end

    it("finds a link split by a quoted-printable soft line break", function()
        local hit = msgchecks.g4(H("Content-Type: text/plain", "Content-Transfer-Encoding: quoted-printable"),
            "Read https://bi=\r\nt.ly/3x=3Dy please\r\n", shorteners)
        assert.equal("bit.ly", hit.host)
        -- and not without the decoding (t.ly, a shortener too, is what that shows)
        local raw = msgchecks.g4(H("Content-Type: text/plain"), "Read https://bi=\r\nt.ly/3x=3Dy\r\n", shorteners)
        assert.not_equal("bit.ly", raw and raw.host)
    end)

    it("finds a link in a base64 part", function()
        -- "<a href=\"https://tinyurl.com/y\">x</a>"
        local hit = msgchecks.g4(H("Content-Type: text/html", "Content-Transfer-Encoding: base64"),
            "PGEgaHJlZj0iaHR0cHM6Ly90aW55\r\ndXJsLmNvbS95Ij54PC9hPg==\r\n", shorteners)
        assert.same({ host = "tinyurl.com", domain = "tinyurl.com", part = "text/html" }, hit)
    end)

    it("finds an href in HTML, also with character references", function()
        local html = H("Content-Type: text/html")
        assert.equal("bit.ly", msgchecks.g4(html, '<a href="http://bit.ly/x">click</a>', shorteners).host)
        assert.equal("bit.ly", msgchecks.g4(html, "<a href='//bit.ly/x'>click</a>", shorteners).host)
        assert.equal("bit.ly", msgchecks.g4(html, '<a href="https://bit&#46;ly/x">c</a>', shorteners).host)
        assert.equal("bit.ly", msgchecks.g4(html, '<a href="https&#x3a;&#x2F;&#x2f;bit.ly/x">c</a>', shorteners).host)
        assert.equal("tiny.cc", msgchecks.g4(html, "<a href=https://tiny.cc/x>c</a>", shorteners).host)
    end)

    it("finds a link in the HTML of alternative inside mixed", function()
        local body = crlf([[
--outer
Content-Type: multipart/alternative; boundary="inner"

--inner
Content-Type: text/plain; charset=utf-8

no link here
--inner
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<p><a href=3D"https://rebrand.ly/=
offer">offer</a></p>
--inner--
--outer
Content-Type: image/png
Content-Transfer-Encoding: base64

aHR0cHM6Ly9iaXQubHkveA==
--outer--
]])
        local hit = msgchecks.g4(H('Content-Type: multipart/mixed; boundary="outer"'), body, shorteners)
        assert.same({ host = "rebrand.ly", domain = "rebrand.ly", part = "text/html" }, hit)
    end)

    it("does not read attachments", function()
        local body = crlf("--b\nContent-Type: application/octet-stream\n\nhttps://bit.ly/x\n--b--\n")
        assert.is_nil((msgchecks.g4(H("Content-Type: multipart/mixed; boundary=b"), body, shorteners)))
    end)

    it("stays fast on a pathological message", function()
        local t0 = os.clock()
        local bodies = {
            string.rep("a", 1048576),                     -- one huge word
            string.rep("a.", 524288) .. "/",              -- a huge dotted host
            string.rep("//", 524288),                     -- links without end
            string.rep("http://", 150000),
            string.rep("&#46;", 200000),
            string.rep("x@", 524288),
            string.rep("www.a ", 170000),
        }
        for _, b in ipairs(bodies) do
            msgchecks.g4(H("Content-Type: text/html"), b, shorteners)
        end
        -- headers built to make patterns rescan
        local long = string.rep("a", 60000)
        msgchecks.po8(H("From: " .. long .. " <alice@example.org>"), ALICE)
        msgchecks.po8(H('From: "' .. string.rep("a@", 30000) .. '" <alice@example.org>'), ALICE)
        msgchecks.g3(H("From: a@b.c", "Date: x", "Message-ID: <" .. string.rep("@", 100000) .. ">"))
        msgchecks.g3(H("From: a@b.c", "Date: x", "Message-ID: <" .. long .. "@" .. long))
        msgchecks.g4(H("Content-Type: " .. string.rep("(", 100000), "Content-Transfer-Encoding: quoted-printable"),
            string.rep(" ", 500000) .. "x", shorteners)
        -- nested multiparts and many parts
        local nested = "x"
        for i = 50, 1, -1 do
            nested = "--b" .. i .. "\r\nContent-Type: multipart/mixed; boundary=b" .. (i + 1) .. "\r\n\r\n" .. nested .. "\r\n--b" .. i .. "--\r\n"
        end
        local _, truncated = msgchecks.g4(H("Content-Type: multipart/mixed; boundary=b1"), nested, shorteners)
        assert.is_string(truncated)
        local many = string.rep("--b\r\nContent-Type: text/plain\r\n\r\nhttps://example.org/\r\n", 20000)
        _, truncated = msgchecks.g4(H("Content-Type: multipart/mixed; boundary=b"), many, shorteners)
        assert.is_string(truncated)
        local elapsed = os.clock() - t0
        assert.is_true(elapsed < 5, "took " .. elapsed .. " s")
    end)
end)
