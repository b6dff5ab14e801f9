-- rfc5322.lua: address lists as mail clients really write them.
local rfc5322 = require "message.rfc5322"

local function pairs_of(list)
    local out = {}
    for i, m in ipairs(list) do out[i] = { m.display, m.address } end
    return out
end

describe("rfc5322.parse_address_list", function()
    local cases = {
        { "bare address", "alice@example.org", { { "", "alice@example.org" } } },
        { "angle only", "<alice@example.org>", { { "", "alice@example.org" } } },
        { "Thunderbird: atoms", "Alice Adams <alice@example.org>", { { "Alice Adams", "alice@example.org" } } },
        { "Outlook: quoted with comma", '"Adams, Alice" <alice@example.org>', { { "Adams, Alice", "alice@example.org" } } },
        { "quoted with escapes", '"Alice \\"Al\\" Adams \\\\ x" <alice@example.org>',
            { { 'Alice "Al" Adams \\ x', "alice@example.org" } } },
        { "old style comment", "alice@example.org (Alice Adams)", { { "", "alice@example.org" } } },
        { "nested comments everywhere", "(a (b) c) Alice (x(y(z))) <alice(c)@(d)example.org> (end)",
            { { "Alice", "alice@example.org" } } },
        { "obs-phrase with a dot", "John Q. Public <jqp@example.org>", { { "John Q. Public", "jqp@example.org" } } },
        { "Apple Mail: UTF-8 Q word", "=?utf-8?Q?J=C3=B6rg_M=C3=BCller?= <joerg@example.org>",
            { { "Jörg Müller", "joerg@example.org" } } },
        { "B word", "=?UTF-8?B?SsO2cmc=?= <joerg@example.org>", { { "Jörg", "joerg@example.org" } } },
        { "ISO-8859-1 Q word", "=?iso-8859-1?q?J=F6rg?= <joerg@example.org>", { { "Jörg", "joerg@example.org" } } },
        { "adjacent words join, space between them dropped",
            "=?utf-8?Q?Hello?= =?utf-8?Q?_World?= <hw@example.org>", { { "Hello World", "hw@example.org" } } },
        { "word next to plain text keeps the space", "Dr. =?utf-8?Q?M=C3=BCller?= <m@example.org>",
            { { "Dr. Müller", "m@example.org" } } },
        { "Outlook: encoded word in quotes", '"=?utf-8?B?U2Now7Zu?=" <s@example.org>', { { "Schön", "s@example.org" } } },
        { "several addresses", "a@example.org, Bee <b@example.org>,c@example.org",
            { { "", "a@example.org" }, { "Bee", "b@example.org" }, { "", "c@example.org" } } },
        { "folded", "Alice Adams\r\n <alice@example.org>,\r\n\tBob <bob@example.org>",
            { { "Alice Adams", "alice@example.org" }, { "Bob", "bob@example.org" } } },
        { "group", "Team: a@example.org, Bee <b@example.org>;", { { "", "a@example.org" }, { "Bee", "b@example.org" } } },
        { "group then address", "Team: a@example.org;, c@example.org", { { "", "a@example.org" }, { "", "c@example.org" } } },
        { "empty group", "undisclosed-recipients:;", {} },
        { "mailing list rewrite", '"Alice Adams via chess" <chess@lists.example.org>',
            { { "Alice Adams via chess", "chess@lists.example.org" } } },
        { "obs-route", "<@relay.example:alice@example.org>", { { "", "alice@example.org" } } },
        { "quoted local part", '"john doe"@example.org', { { "", '"john doe"@example.org' } } },
        { "domain literal", "root@[192.0.2.1]", { { "", "root@[192.0.2.1]" } } },
        { "empty elements (obs)", ", a@example.org,,", { { "", "a@example.org" } } },
        { "null address", "<>", { { "", "" } } },
        { "UTF-8 raw (SMTPUTF8)", "Jörg <jörg@bücher.example>", { { "Jörg", "jörg@bücher.example" } } },
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            local list, err = rfc5322.parse_address_list(c[2])
            assert.is_nil(err)
            assert.same(c[3], pairs_of(list))
        end)
    end

    it("names the group of group members", function()
        local list = rfc5322.parse_address_list("=?utf-8?Q?T=C3=A9am?=: a@example.org;")
        assert.equal("Téam", list[1].group)
    end)

    local bad = {
        { "no address", "Alice Adams", "expected '@'" },
        { "unterminated quote", '"Alice <alice@example.org>', "unterminated quoted string" },
        { "unterminated comment", "alice@example.org (x (y)", "unterminated comment" },
        { "missing >", "Alice <alice@example.org", "expected '>'" },
        { "two addresses without a comma", "a@example.org b@example.org", "expected ','" },
        { "no domain", "alice@", "expected a domain" },
        { "control character", "alice\1@example.org", "control character" },
        { "empty", "", "no address" },
        { "only comments", "(nobody)", "no address" },
    }
    for _, c in ipairs(bad) do
        it("refuses " .. c[1], function()
            local list, err = rfc5322.parse_address_list(c[2])
            assert.is_nil(list)
            assert.matches(c[3], err, 1, true)
        end)
    end

    it("refuses too long a value and too many addresses, quickly", function()
        local t0 = os.clock()
        local _, err = rfc5322.parse_address_list(string.rep("a@example.org, ", 5000))
        assert.matches("too long", err)
        _, err = rfc5322.parse_address_list(string.rep("a@b.c,", 1001))
        assert.matches("more than 1000 addresses", err)
        _, err = rfc5322.parse_address_list(string.rep("(", 40) .. string.rep(")", 40) .. "a@b.c")
        assert.matches("nested too deep", err)
        _, err = rfc5322.parse_address_list(string.rep('"', 60001))
        assert.is_string(err)
        _, err = rfc5322.parse_address_list(string.rep("=?utf-8?Q?", 6000))
        assert.is_string(err)
        assert.is_true(os.clock() - t0 < 1, "took " .. (os.clock() - t0) .. " s")
    end)
end)

describe("rfc5322 helpers", function()
    it("checks field names", function()
        for _, ok in ipairs { "From", "X-Mailer", "Message-ID", "x!#$%&'*+-.^_`{|}~" } do
            assert.is_true(rfc5322.valid_name(ok), ok)
        end
        for _, bad in ipairs { "", "Fr om", "From:", "Fröm", "X\tY", string.rep("x", 999) } do
            assert.is_false(rfc5322.valid_name(bad), bad)
        end
    end)

    it("unfolds", function()
        assert.equal("a b\tc", rfc5322.unfold("a\r\n b\n\tc"))
    end)

    it("leaves undecodable words and other charsets' bytes alone", function()
        assert.equal("=?utf-8?X?abc?=", rfc5322.decode_words("=?utf-8?X?abc?="))
        assert.equal("abc", rfc5322.decode_words("=?koi8-r?B?YWJj?="))
        assert.equal("plain", rfc5322.decode_words("plain"))
    end)
end)
