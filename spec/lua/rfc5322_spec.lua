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

describe("rfc5322.parse_date (3.3, obsolete forms 4.3)", function()
    local valid = {
        { "Thunderbird", "Sat, 28 Nov 2026 09:00:00 +0100", { 2026, 11, 28, 9, 0, 0, 60 } },
        { "no day of the week", "28 Nov 2026 09:00:00 -0500", { 2026, 11, 28, 9, 0, 0, -300 } },
        { "one-digit day, no seconds", "1 Dec 2026 23:59 +0000", { 2026, 12, 1, 23, 59, 0, 0 } },
        { "a leap second", "Wed, 31 Dec 2025 23:59:60 +0000", { 2025, 12, 31, 23, 59, 60, 0 } },
        { "29 February of a leap year", "29 Feb 2028 12:00:00 +0000", { 2028, 2, 29, 12, 0, 0, 0 } },
        { "the zone as a comment too", "Sat, 28 Nov 2026 09:00:00 +0100 (CET)", { 2026, 11, 28, 9, 0, 0, 60 } },
        { "folded", "Sat, 28 Nov 2026\r\n 09:00:00 +0100", { 2026, 11, 28, 9, 0, 0, 60 } },
        { "obs: lower case names", "sat, 28 nov 2026 09:00:00 +0100", { 2026, 11, 28, 9, 0, 0, 60 } },
        { "obs: two-digit year before 50", "Sat, 28 Nov 26 09:00:00 +0100", { 2026, 11, 28, 9, 0, 0, 60 } },
        { "obs: two-digit year from 50", "1 Jan 99 00:00:00 +0000", { 1999, 1, 1, 0, 0, 0, 0 } },
        { "obs: three-digit year", "1 Jan 103 00:00:00 +0000", { 2003, 1, 1, 0, 0, 0, 0 } },
        { "obs: GMT", "Sat, 28 Nov 2026 08:00:00 GMT", { 2026, 11, 28, 8, 0, 0, 0 } },
        { "obs: UT", "28 Nov 2026 08:00 UT", { 2026, 11, 28, 8, 0, 0, 0 } },
        { "obs: EST", "28 Nov 2026 03:00:00 EST", { 2026, 11, 28, 3, 0, 0, -300 } },
        { "obs: PDT", "28 Nov 2026 03:00:00 PDT", { 2026, 11, 28, 3, 0, 0, -420 } },
        { "obs: a military zone", "28 Nov 2026 08:00:00 Z", { 2026, 11, 28, 8, 0, 0, 0 } },
        { "obs: space before the comma", "Sat , 28 Nov 2026 09:00:00 +0100", { 2026, 11, 28, 9, 0, 0, 60 } },
        { "obs: white space around colons", "28 Nov 2026 09 : 00 : 00 +0100", { 2026, 11, 28, 9, 0, 0, 60 } },
        { "obs: comments between the parts", "(x) Sat (y), 28 (z) Nov 2026 09:00:00 +0100 (w)",
            { 2026, 11, 28, 9, 0, 0, 60 } },
        { "obs: no space between day, month, year", "28Nov2026 09:00:00 +0100", { 2026, 11, 28, 9, 0, 0, 60 } },
    }
    for _, c in ipairs(valid) do
        it("reads " .. c[1], function()
            local d, err = rfc5322.parse_date(c[2])
            assert.is_table(d, err)
            assert.same(c[3], { d.year, d.month, d.day, d.hour, d.min, d.sec, d.zone })
        end)
    end

    local invalid = {
        { "ISO 8601", "2026-11-28T09:00:00Z" },
        { "empty", "" },
        { "text", "yesterday" },
        { "a Unix ctime", "Sat Nov 28 09:00:00 2026" },
        { "a one-digit hour", "Sat, 28 Nov 2026 9:00:00 +0100" },
        { "no zone", "Sat, 28 Nov 2026 09:00:00" },
        { "a zone name RFC 5322 does not list", "Sat, 28 Nov 2026 09:00:00 CET" },
        { "the military J", "28 Nov 2026 09:00:00 J" },
        { "a numeric zone without its space", "28 Nov 2026 09:00:00+0100" },
        { "a 3-digit zone", "28 Nov 2026 09:00:00 +100" },
        { "zone minutes 60", "28 Nov 2026 09:00:00 +0160" },
        { "a wrong day of the week", "Sun, 28 Nov 2026 09:00:00 +0100" },
        { "no such day of the week", "Sax, 28 Nov 2026 09:00:00 +0100" },
        { "no such month", "28 Noe 2026 09:00:00 +0100" },
        { "31 November", "31 Nov 2026 09:00:00 +0100" },
        { "29 February of a common year", "29 Feb 2026 09:00:00 +0100" },
        { "day 0", "0 Nov 2026 09:00:00 +0100" },
        { "hour 24", "28 Nov 2026 24:00:00 +0100" },
        { "minute 60", "28 Nov 2026 09:60:00 +0100" },
        { "second 61", "28 Nov 2026 09:00:61 +0100" },
        { "a year before 1900", "28 Nov 1899 09:00:00 +0100" },
        { "a one-digit year", "28 Nov 6 09:00:00 +0100" },
        { "a 3-digit day", "128 Nov 2026 09:00:00 +0100" },
        { "trailing text", "28 Nov 2026 09:00:00 +0100 CET" },
        { "an unterminated comment", "28 Nov 2026 09:00:00 +0100 (CET" },
        { "8-bit", "28 Növ 2026 09:00:00 +0100" },
    }
    for _, c in ipairs(invalid) do
        it("refuses " .. c[1], function()
            local d, err = rfc5322.parse_date(c[2])
            assert.is_nil(d)
            assert.is_string(err)
        end)
    end

    it("is quick on hostile input", function()
        local t0 = os.clock()
        for _ = 1, 100 do
            rfc5322.parse_date(string.rep("(", 990))
            rfc5322.parse_date(string.rep("1 ", 499))
            rfc5322.parse_date("1 Jan 2026 " .. string.rep(" ", 980) .. "x")
        end
        assert.is_true(os.clock() - t0 < 1)
    end)
end)

describe("rfc5322.parse_msg_ids (3.6.4, obsolete forms 4.5.4)", function()
    local valid = {
        { "a dot-atom id", "<1234.5678@mail.example.org>", { "<1234.5678@mail.example.org>" } },
        { "atext specials", "<a!#$%&'*+-/=?^_`{|}~b@x.example>", { "<a!#$%&'*+-/=?^_`{|}~b@x.example>" } },
        { "a domain literal right", "<abc@[192.0.2.1]>", { "<abc@[192.0.2.1]>" } },
        { "with comments around", " (c) <a@b> (d) ", { "<a@b>" } },
        { "UTF-8 (RFC 6532)", "<über@bücher.example>", { "<über@bücher.example>" } },
        { "obs: a quoted id-left", '<"a b"@x.example>', { '<"a b"@x.example>' } },
        { "obs: CFWS inside", "< a . b @ x . example >", { "<a.b@x.example>" } },
    }
    for _, c in ipairs(valid) do
        it("reads " .. c[1], function()
            assert.same(c[3], (rfc5322.parse_msg_ids(c[2])))
        end)
    end

    it("reads several, folded, for References", function()
        assert.same({ "<a@b>", "<c@d>", "<e@f>" }, (rfc5322.parse_msg_ids("<a@b>\r\n <c@d>\r\n\t<e@f>", true)))
        assert.same({ "<a@b>", "<c@d>" }, (rfc5322.parse_msg_ids("<a@b><c@d>")))
    end)

    it("reads the obsolete phrases of In-Reply-To and References only when asked", function()
        local v = 'Your message of "Sat, 28 Nov 2026" <a@b>'
        assert.same({ "<a@b>" }, (rfc5322.parse_msg_ids(v, true)))
        assert.is_nil((rfc5322.parse_msg_ids(v)))
        assert.same({}, (rfc5322.parse_msg_ids("your message of Monday", true)))
        assert.same({ "<a@b>" }, (rfc5322.parse_msg_ids("<a@b> John Q. Public", true)))
    end)

    local invalid = {
        { "no angle brackets", "1234@example.org" },
        { "no @", "<1234.example.org>" },
        { "two @", "<a@b@c>" },
        { "empty left", "<@b>" },
        { "empty right", "<a@>" },
        { "a double dot", "<a..b@c>" },
        { "a trailing dot right", "<a@b.>" },
        { "unclosed", "<a@b" },
        { "a space in an atom... as two words", "<a b@c>" },
        { "a quoted id-right", '<a@"b">' },
        { "a domain literal left", "<[a]@b>" },
        { "commas between ids", "<a@b>, <c@d>" },
        { "empty", "" },
        { "a control character", "<a\1b@c>" },
    }
    for _, c in ipairs(invalid) do
        it("refuses " .. c[1], function()
            local ids, err = rfc5322.parse_msg_ids(c[2])
            assert.is_nil(ids)
            assert.is_string(err)
        end)
    end
    it("refuses commas and bad ids in the obsolete form too", function()
        assert.is_nil((rfc5322.parse_msg_ids("<a@b>, <c@d>", true)))
        assert.is_nil((rfc5322.parse_msg_ids("Re: <a@b>", true)))
        assert.is_nil((rfc5322.parse_msg_ids("x <a@>", true)))
    end)
end)

describe("rfc5322.longest_line", function()
    it("counts the name and colon on the first line, and each folded line", function()
        assert.equal(#"Subject:hello", rfc5322.longest_line("Subject", "hello"))
        assert.equal(998, rfc5322.longest_line("X", string.rep("a", 996)))
        assert.equal(999, rfc5322.longest_line("X", "short\r\n " .. string.rep("a", 998)))
        assert.equal(999, rfc5322.longest_line("X", "short\n " .. string.rep("a", 998)))
    end)
end)
