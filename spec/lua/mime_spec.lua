-- mime.lua and decode.lua: the text parts of real message shapes, decoded,
-- within bounds.
local mime = require "message.mime"
local decode = require "message.decode"

local function H(t)
    local h = {}
    for name, value in pairs(t) do h[#h + 1] = { name = name, value = value } end
    return h
end

local function crlf(s) return (s:gsub("\r?\n", "\r\n")) end

describe("decode", function()
    local b64 = {
        { "", "" }, { "YQ==", "a" }, { "YWI=", "ab" }, { "YWJj", "abc" },
        { "SGVs\r\nbG8g\r\nV29y bGQ=", "Hello World" }, { "YWJj\n", "abc" }, { "YW", "a" },
    }
    for _, c in ipairs(b64) do
        it("base64 " .. c[1]:gsub("%c", "."), function() assert.equal(c[2], decode.base64(c[1])) end)
    end

    local qp = {
        { "plain", "plain" }, { "caf=C3=A9", "café" }, { "soft=\r\nbreak", "softbreak" },
        { "soft=\nLF", "softLF" }, { "a = b", "a = b" }, { "trailing   \r\nx", "trailing\r\nx" },
        { "=3D", "=" }, { "lower=c3=a9", "loweré" },
    }
    for _, c in ipairs(qp) do
        it("quoted-printable " .. c[1]:gsub("%c", "."), function()
            assert.equal(c[2], decode.quoted_printable(c[1]))
        end)
    end

    it("quoted-printable keeps CRLF and blanks inside lines", function()
        assert.equal("a  b\r\nc\n\r\nd", decode.quoted_printable("a  b \t\r\nc  \n\r\nd\t"))
    end)

    it("latin-1 to UTF-8", function()
        assert.equal("Jörg ÿ", decode.latin1_to_utf8("J\246rg \255"))
        assert.equal("Jörg", decode.to_utf8("ISO-8859-1", "J\246rg"))
        assert.equal("J\246rg", decode.to_utf8("koi8-r", "J\246rg"))
    end)
end)

describe("mime.content_type", function()
    local cases = {
        { nil, "text/plain", {} },
        { "text/HTML; charset=UTF-8", "text/html", { charset = "UTF-8" } },
        { 'multipart/alternative;\r\n boundary="----=_Part_1_2.3"', "multipart/alternative",
            { boundary = "----=_Part_1_2.3" } },
        { "multipart/mixed; boundary=abc (comment)", "multipart/mixed", { boundary = "abc" } },
        { "garbage", "text/plain", {} },
    }
    for i, c in ipairs(cases) do
        it("reads case " .. i, function()
            local t, p = mime.content_type(c[1] and c[1]:gsub("\r\n", "") or nil)
            assert.equal(c[2], t)
            assert.same(c[3], p)
        end)
    end
end)

describe("mime.text_parts", function()
    it("a plain message is one text/plain part", function()
        local parts = mime.text_parts(H { From = "a@b.c" }, "Hello\r\n")
        assert.same({ { type = "text/plain", text = "Hello\r\n" } }, parts)
    end)

    it("decodes a single quoted-printable part", function()
        local parts = mime.text_parts(H { ["Content-Type"] = "text/plain; charset=utf-8",
            ["Content-Transfer-Encoding"] = "Quoted-Printable" }, "caf=C3=A9 ht=\r\ntp://x\r\n")
        assert.equal("café http://x\r\n", parts[1].text)
        assert.equal("utf-8", parts[1].charset)
    end)

    -- Thunderbird/Apple Mail shape: alternative inside mixed, with an attachment
    local nested = crlf([[
This is a multi-part message in MIME format.
--outer
Content-Type: multipart/alternative;
 boundary="inner"

--inner
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: quoted-printable

see https://exa=
mple.org/x
--inner
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: base64

PGEgaHJlZj0iaHR0cHM6Ly9leGFtcGxlLm9yZy94Ij54PC9hPg==
--inner--

--outer
Content-Type: application/pdf; name="x.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQK
--outer
Content-Type: message/rfc822

From: c@d.e
Content-Type: text/plain

forwarded text
--outer--
epilogue
]])

    it("walks alternative inside mixed, skips attachments, enters message/rfc822", function()
        local parts, truncated = mime.text_parts(H { ["Content-Type"] = 'multipart/mixed; boundary="outer"' }, nested)
        assert.is_nil(truncated)
        assert.equal(3, #parts)
        assert.same({ "text/plain", "see https://example.org/x" }, { parts[1].type, parts[1].text })
        assert.same({ "text/html", '<a href="https://example.org/x">x</a>' }, { parts[2].type, parts[2].text })
        assert.equal("forwarded text", parts[3].text)
    end)

    it("reads LF-only bodies and a body cut before the close delimiter", function()
        local lf = nested:gsub("\r\n", "\n")
        local parts = mime.text_parts(H { ["Content-Type"] = 'multipart/mixed; boundary="outer"' }, lf)
        assert.equal(3, #parts)
        local cut = nested:sub(1, nested:find("PGEg", 1, true) + 20)
        parts = mime.text_parts(H { ["content-type"] = 'multipart/mixed; boundary="outer"' }, cut)
        assert.equal(2, #parts)
        assert.equal("<a href=\"https:", parts[2].text)
    end)

    it("skips a multipart without a boundary", function()
        assert.same({}, (mime.text_parts(H { ["Content-Type"] = "multipart/mixed" }, "--x\r\n\r\nhi\r\n")))
    end)

    it("stops at the depth cap", function()
        local body = "x"
        for i = 20, 1, -1 do
            body = "--b" .. i .. "\r\nContent-Type: multipart/mixed; boundary=b" .. (i + 1) .. "\r\n\r\n" .. body .. "\r\n--b" .. i .. "--\r\n"
        end
        local parts, truncated = mime.text_parts(H { ["Content-Type"] = "multipart/mixed; boundary=b1" }, body)
        assert.same({}, parts)
        assert.matches("nested deeper than 8", truncated)
    end)

    it("stops at the part cap and the byte cap", function()
        local many = {}
        for i = 1, 300 do many[#many + 1] = "--b\r\nContent-Type: text/plain\r\n\r\npart " .. i .. "\r\n" end
        local parts, truncated = mime.text_parts(H { ["Content-Type"] = "multipart/mixed; boundary=b" },
            table.concat(many) .. "--b--\r\n")
        assert.is_true(#parts <= 200)
        assert.matches("parts", truncated)
        parts, truncated = mime.text_parts(H {}, string.rep("x", 3000), { bytes = 1000 })
        assert.equal(1000, #parts[1].text)
        assert.matches("1000 decoded bytes", truncated)
    end)

    it("stays fast on pathological bodies", function()
        local t0 = os.clock()
        local big = string.rep("--b\r\n", 200000)            -- a million delimiter bytes
        mime.text_parts(H { ["Content-Type"] = "multipart/mixed; boundary=b" }, big)
        mime.text_parts(H { ["Content-Type"] = "text/plain", ["Content-Transfer-Encoding"] = "base64" },
            string.rep("QUFB", 500000))
        mime.text_parts(H { ["Content-Type"] = "text/plain", ["Content-Transfer-Encoding"] = "quoted-printable" },
            string.rep("=\r\n=3D", 300000))
        -- blanks that are not trailing, and comments that do not close
        decode.quoted_printable(string.rep(" ", 1000000) .. "x")
        decode.quoted_printable(string.rep(" \r\n", 300000) .. string.rep("\t", 100000) .. "x")
        local ctype = string.rep("(", 100000) .. "text/plain"
        for _ = 1, 50 do mime.content_type(ctype) end
        local hdrs = string.rep("X-A: b\r\n", 100000)
        mime.text_parts(H { ["Content-Type"] = "multipart/mixed; boundary=b" }, "--b\r\n" .. hdrs .. "\r\nx\r\n--b--")
        assert.is_true(os.clock() - t0 < 3, "took " .. (os.clock() - t0) .. " s")
    end)
end)
