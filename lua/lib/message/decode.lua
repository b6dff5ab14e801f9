-- decode: the byte-level decoders of MIME (RFC 2045, RFC 2047), shared by
-- rfc5322.lua (encoded words) and mime.lua (transfer encodings).
--
--   decode.base64(s)            -> bytes (characters outside the alphabet
--                                  are skipped, as RFC 2045 6.8 asks)
--   decode.quoted_printable(s)  -> bytes (soft line breaks removed, =XX
--                                  decoded, a stray "=" kept as it is)
--   decode.q(s)                 -> bytes of an RFC 2047 Q word ("_" is a space)
--   decode.latin1_to_utf8(s)    -> UTF-8 text of ISO-8859-1 bytes
--   decode.to_utf8(charset, s)  -> UTF-8 for utf-8/us-ascii/iso-8859-1 (and
--                                  windows-1252 read as latin-1); other
--                                  charsets' bytes unchanged
--
-- Every function is a few gsub passes over its input: linear time, so the
-- caller's size cap is the only bound needed.
local bit = bit -- LuaJIT's, a global (also in the policy sandbox)
local band, bor, lshift, rshift = bit.band, bit.bor, bit.lshift, bit.rshift
local char, byte = string.char, string.byte

local M = {}

local B64 = {}
do
    local alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    for i = 1, 64 do B64[byte(alphabet, i)] = i - 1 end
end

local function quad(s)
    local a, b, c, d = byte(s, 1, 4)
    local n = bor(lshift(B64[a], 18), lshift(B64[b], 12), lshift(B64[c], 6), B64[d])
    return char(rshift(n, 16), band(rshift(n, 8), 255), band(n, 255))
end

function M.base64(s)
    -- stop at padding: what follows "=" is not data
    s = s:gsub("=.*$", ""):gsub("[^%w%+/]", "")
    local full = #s - #s % 4
    local out = s:sub(1, full):gsub("....", quad)
    local rest = s:sub(full + 1)
    if #rest >= 2 then
        -- 2 characters carry 1 byte, 3 carry 2; 1 carries nothing
        local a, b, c = byte(rest, 1, 3)
        local n = bor(lshift(B64[a], 18), lshift(B64[b], 12), lshift(c and B64[c] or 0, 6))
        out = out .. char(rshift(n, 16))
        if c then out = out .. char(band(rshift(n, 8), 255)) end
    end
    return out
end

local function hex(h) return char(tonumber(h, 16)) end

-- Trailing white space on a line was added in transport (RFC 2045 6.7 (3)).
-- Found by scanning back from each line end: a pattern such as
-- "[ \t]+\r?\n" would rescan a long run of blanks from every position in it.
local function strip_trailing_blanks(s)
    if not s:find("[ \t]\r?\n") and not s:find("[ \t]$") then return s end
    local out, pos, n = {}, 1, #s
    while pos <= n do
        local nl = s:find("\n", pos, true)
        local stop = nl and nl - 1 or n
        local e = stop
        if e >= pos and byte(s, e) == 13 then e = e - 1 end
        local cr = e < stop
        while e >= pos and (byte(s, e) == 32 or byte(s, e) == 9) do e = e - 1 end
        out[#out + 1] = s:sub(pos, e)
        if cr then out[#out + 1] = "\r" end
        if nl then out[#out + 1] = "\n" end
        pos = (nl or n) + 1
    end
    return table.concat(out)
end

function M.quoted_printable(s)
    s = strip_trailing_blanks(s)
    return (s:gsub("=\r?\n", ""):gsub("=(%x%x)", hex))
end

function M.q(s)
    return (s:gsub("_", " "):gsub("=(%x%x)", hex))
end

local function latin1(c)
    local b = byte(c)
    return char(bor(0xC0, rshift(b, 6)), bor(0x80, band(b, 0x3F)))
end

function M.latin1_to_utf8(s)
    return (s:gsub("[\128-\255]", latin1))
end

local LATIN1 = { ["iso-8859-1"] = true, ["iso8859-1"] = true, ["latin1"] = true,
    ["iso-8859-15"] = true, ["windows-1252"] = true, ["cp1252"] = true }

function M.to_utf8(charset, s)
    charset = (charset or ""):lower()
    if LATIN1[charset] then return M.latin1_to_utf8(s) end
    return s
end

return M
