-- mime: the text a message shows, for checks that read bodies (G4).
--
--   mime.header(headers, name)          -> the first value of that field, unfolded, or nil
--   mime.content_type(value)            -> "type/subtype" (lower case), {param = value}
--   mime.parse_headers(text)            -> { {name=, value=}, ... } of a part's header block
--   mime.text_parts(headers, body [, limits])
--       -> { {type = "text/plain" | "text/html", text = decoded, charset = }, ... },
--          truncated (nil, or why the walk stopped early)
--
-- headers are the message's ({name=, value=} as the milter gives them);
-- body is its bytes (CRLF or LF line ends).  The walk follows multipart/*
-- (any subtype: mixed, alternative, related, ...) and message/rfc822 into
-- their parts, and decodes text/plain and text/html parts' Content-Transfer-
-- Encoding (quoted-printable, base64; 7bit, 8bit and binary as they are).
-- Other parts (images, attachments) are skipped without decoding.
--
-- Hostile input is bounded: at most limits.depth nested multiparts (8),
-- limits.parts parts (200), limits.bytes decoded bytes in total (1 MiB;
-- the last part is cut there), limits.headers header lines per part (100).
-- Reaching a bound stops the walk and says so in `truncated`; what was
-- decoded so far is returned, so a check still sees it.
local decode = require "message.decode"
local rfc5322 = require "message.rfc5322"

local M = {}

M.LIMITS = { depth = 8, parts = 200, bytes = 1048576, headers = 100 }

function M.header(headers, name)
    name = name:lower()
    for _, h in ipairs(headers) do
        if h.name:lower() == name then return rfc5322.unfold(h.value) end
    end
    return nil
end

-- RFC 822 comments, nested, removed in one pass (outside quoted strings is
-- not tracked: parameters with "(" in quotes are rare and harmless here)
local function strip_comments(value)
    local out, depth, pos = {}, 0, 1
    while true do
        local i = value:find("[()]", pos)
        if not i then
            if depth == 0 then out[#out + 1] = value:sub(pos) end
            break
        end
        if depth == 0 then out[#out + 1] = value:sub(pos, i - 1) end
        if value:sub(i, i) == "(" then depth = depth + 1 elseif depth > 0 then depth = depth - 1 end
        pos = i + 1
    end
    return table.concat(out)
end

function M.content_type(value)
    if not value then return "text/plain", {} end
    -- real ones are short; the cap keeps the patterns below cheap
    if #value > 4096 then value = value:sub(1, 4096) end
    if value:find("(", 1, true) then value = strip_comments(value) end
    local t = value:match("^%s*([%w!#$%%&'*+%-.^_`{|}~]+/[%w!#$%%&'*+%-.^_`{|}~]+)")
    if not t then return "text/plain", {} end -- RFC 2045 5.2: a bad one is text/plain
    local params = {}
    for k, v in value:gmatch(";%s*([%w%-_.*]+)%s*=%s*(\"[^\"]*\")") do params[k:lower()] = v:sub(2, -2) end
    for k, v in value:gmatch(";%s*([%w%-_.*]+)%s*=%s*([^\";%s]+)") do
        if params[k:lower()] == nil then params[k:lower()] = v end
    end
    return t:lower(), params
end

function M.parse_headers(text, max)
    max = max or M.LIMITS.headers
    local headers = {}
    text = rfc5322.unfold(text)
    for line in text:gmatch("[^\r\n]+") do
        local name, value = line:match("^([^:%s]+)%s*:%s*(.*)$")
        if name then
            if #headers >= max then return headers, "too many header lines in a part" end
            headers[#headers + 1] = { name = name, value = value }
        end
    end
    return headers
end

-- head and body of an entity: split at the first empty line
local function split_entity(s)
    local i, j = s:find("\r?\n\r?\n")
    if s:find("^\r?\n") then return "", (s:gsub("^\r?\n", "")) end
    if not i then return s, "" end
    return s:sub(1, i - 1), s:sub(j + 1)
end

-- The parts between "--boundary" lines; the preamble and the epilogue are
-- not parts.  A body without a closing delimiter (cut by keep_body) gives
-- the parts it has.
local function split_multipart(body, boundary, max_parts)
    local parts, delim = {}, "--" .. boundary
    local pos
    if body:sub(1, #delim) == delim then pos = 1
    else
        pos = body:find("\n" .. delim, 1, true)
        if not pos then return parts end
        pos = pos + 1
    end
    while true do
        local after = pos + #delim
        if body:sub(after, after + 1) == "--" then break end -- the close delimiter
        local line_end = body:find("\n", after, true)
        if not line_end then break end
        local nxt = body:find("\n" .. delim, line_end, true)
        local stop = nxt and nxt - 1 or #body
        if body:sub(stop, stop) == "\r" then stop = stop - 1 end
        if #parts >= max_parts then return parts, "too many parts" end
        parts[#parts + 1] = body:sub(line_end + 1, stop)
        if not nxt then break end
        pos = nxt + 1
    end
    return parts
end

function M.text_parts(headers, body, limits)
    limits = limits or M.LIMITS
    local max_depth = limits.depth or M.LIMITS.depth
    local max_parts = limits.parts or M.LIMITS.parts
    local max_bytes = limits.bytes or M.LIMITS.bytes
    local out, seen, used = {}, 0, 0
    local truncated

    local function walk(hdrs, content, depth)
        if truncated then return end
        seen = seen + 1
        if seen > max_parts then truncated = "more than " .. max_parts .. " parts"; return end
        local ctype, params = M.content_type(M.header(hdrs, "content-type"))
        if ctype:match("^multipart/") then
            if depth >= max_depth then truncated = "multiparts nested deeper than " .. max_depth; return end
            local boundary = params.boundary
            if not boundary or boundary == "" or #boundary > 200 then return end
            local parts, why = split_multipart(content, boundary, max_parts)
            for _, p in ipairs(parts) do
                local h, b = split_entity(p)
                local ph, hwhy = M.parse_headers(h, limits.headers)
                if hwhy then truncated = hwhy; return end
                walk(ph, b, depth + 1)
                if truncated then return end
            end
            if why then truncated = why end
        elseif ctype == "message/rfc822" or ctype == "message/global" then
            if depth >= max_depth then truncated = "messages nested deeper than " .. max_depth; return end
            local h, b = split_entity(content)
            local ph, hwhy = M.parse_headers(h, limits.headers)
            if hwhy then truncated = hwhy; return end
            walk(ph, b, depth + 1)
        elseif ctype == "text/plain" or ctype == "text/html" then
            local cte = (M.header(hdrs, "content-transfer-encoding") or ""):lower():match("^%s*(%S*)")
            -- decoding never grows data: cutting the input at what is left
            -- of the budget bounds the work as well as the result
            local room = max_bytes - used
            if #content > room * 2 + 4 then content = content:sub(1, room * 2 + 4) end
            local text
            if cte == "base64" then text = decode.base64(content)
            elseif cte == "quoted-printable" then text = decode.quoted_printable(content)
            else text = content end
            if #text > room then
                text = text:sub(1, room)
                truncated = "more than " .. max_bytes .. " decoded bytes"
            end
            used = used + #text
            out[#out + 1] = { type = ctype, text = text, charset = params.charset }
        end
    end

    walk(headers, body, 0)
    return out, truncated
end

return M
