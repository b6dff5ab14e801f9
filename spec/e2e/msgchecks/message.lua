-- One message through the messages policy (lua/policies/messages.lua),
-- alice authenticated: -D case=NAME picks headers and body, -D want=reject
-- or continue says what end of message must answer.
dofile(dir .. "/../milter/prelude.lua")

local GOOD = {
    { "From", "Alice Adams <alice@example.org>" },
    { "To", "bob@example.net" },
    { "Date", "Sat, 28 Nov 2026 09:00:00 +0100" },
    { "Message-ID", "<e2e.1@example.org>" },
    { "Subject", "hello" },
}

local function with(changes, extra)
    local out = {}
    for _, h in ipairs(GOOD) do
        local v = changes[h[1]]
        if v == nil then out[#out + 1] = h elseif v then out[#out + 1] = { h[1], v } end
    end
    for _, h in ipairs(extra or {}) do out[#out + 1] = h end
    return out
end

local QP = { { "MIME-Version", "1.0" }, { "Content-Type", "text/plain; charset=utf-8" },
    { "Content-Transfer-Encoding", "quoted-printable" } }
local B64 = { { "MIME-Version", "1.0" }, { "Content-Type", "text/html; charset=utf-8" },
    { "Content-Transfer-Encoding", "base64" } }

local CASES = {
    good = { with {}, "Hello Bob, see https://www.example.org/x\r\n" },
    alias = { with { From = '"Adams, Alice" <A.Adams@LRZ.example>' }, "Hi\r\n" },
    other_from = { with { From = "The Boss <boss@example.org>" }, "Please pay\r\n" },
    no_date = { with { Date = false }, "Hi\r\n" },
    two_from = { with({}, { { "From", "alice@example.org" } }), "Hi\r\n" },
    shortener_qp = { with({}, QP), "Read this: https://bi=\r\nt.ly/3xY=\r\nz and reply\r\n" },
    -- <a href="https://tinyurl.com/y">x</a>
    shortener_b64 = { with({}, B64), "PGEgaHJlZj0iaHR0cHM6Ly90aW55dXJsLmNvbS95Ij54PC9hPg==\r\n" },
}

-- Issue 14 item 5: header syntax G3 did not read
CASES.bad_date = { with { Date = "2026-11-28T09:00:00Z" }, "Hi\r\n" }
CASES.long_line = { with({}, { { "X-Long", string.rep("a", 1000) } }), "Hi\r\n" }
CASES.obs_date = { with { Date = "Sat, 28 Nov 26 08:00:00 GMT (UTC)" }, "Hi\r\n" }

-- Past what the milter keeps (1,000 fields, 256 KiB) the message is never
-- judged on the part kept: a second From after the bound must not pass.
local function fillers(headers, n, size)
    local out = {}
    for _, h in ipairs(headers) do out[#out + 1] = h end
    for i = 1, n do out[#out + 1] = { "X-Filler-" .. i, size and string.rep("f", size) or "x" } end
    return out
end
CASES.flood_from = { fillers(with {}, 1000), "Hi\r\n" }
table.insert(CASES.flood_from[1], { "From", "The Boss <boss@example.org>" })
CASES.at_bound = { fillers(with {}, 1000 - #GOOD), "Hi\r\n" } -- exactly 1,000: kept whole
CASES.big_from = { fillers(with {}, 300, 900), "Hi\r\n" } -- 270 KB of header
-- larger than the room the fillers leave, so the old code dropped it (a
-- short one fitted in the last bytes, and G3 saw two From)
table.insert(CASES.big_from[1], { "From", string.rep("B", 950) .. " <boss@example.org>" })

local c = CASES[case]
check(c ~= nil, "a known case: " .. tostring(case))
local conn = connect()
envelope(conn, "<alice@example.org>", "alice") -- the login name (uid) in {auth_authen}
check(mt.getreply(conn) == SMFIR_CONTINUE, "continue after mail")
check(mt.rcptto(conn, "<bob@example.net>") == nil, "rcptto")
check(mt.getreply(conn) == SMFIR_CONTINUE, "continue after rcpt")
for _, h in ipairs(c[1]) do check(mt.header(conn, h[1], h[2]) == nil, "header " .. h[1]) end
check(mt.eoh(conn) == nil, "eoh")
check(mt.bodystring(conn, c[2]) == nil, "body")
check(mt.eom(conn) == nil, "eom")
local reply = mt.getreply(conn)
if want == "reject" then
    check(reply == SMFIR_REPLYCODE, case .. ": a reply code at end of message")
else
    check(reply == SMFIR_CONTINUE, case .. ": continue at end of message")
end
check(not mt.test_option(conn, SMFIP_NOBODY), "the body was asked for (keep_body)")
mt.disconnect(conn)
