-- rfc5322: header fields as RFC 5322 writes them, for the message checks
-- (PO8, G3) and anything else that reads a From or To.
--
--   rfc5322.unfold(value)               -> the value on one line (RFC 5322 2.2.3)
--   rfc5322.valid_name(name)            -> true when name is a field name (2.2:
--                                          printable US-ASCII except ":")
--   rfc5322.decode_words(text)          -> text with RFC 2047 encoded words
--                                          (B and Q; UTF-8, ASCII, ISO-8859-1)
--                                          decoded to UTF-8
--   rfc5322.parse_address_list(value)   -> { {display=, address=, group=}, ... }
--                                          or nil, reason
--   rfc5322.parse_date(value)           -> {year=, month=, day=, hour=, min=,
--                                          sec=, zone= (minutes east)} or nil, reason
--   rfc5322.parse_msg_ids(value [, obsolete_phrases])
--                                       -> { "<left@right>", ... } or nil, reason
--   rfc5322.longest_line(name, value)   -> the length of the longest line the
--                                          field takes, without CRLF (2.1.1)
--
-- parse_address_list reads address-list (3.4): display names (atoms, quoted
-- strings with escapes, the obsolete phrase with dots "John Q. Public"),
-- angle addresses with an obsolete route (<@relay:a@b>), bare addr-specs,
-- groups ("Team: a@b, c@d;", also empty ones), comments nested to any depth
-- at the CFWS places, empty list elements (obs-addr-list).  address is the
-- addr-spec as written (a quoted local part keeps its quotes); compare it
-- through address.normalize.  display is decoded text, "" when none;
-- group is the group's display name for members of a group.
--
-- Bounded: a value over MAX_VALUE bytes or with over MAX_ADDRESSES
-- addresses is refused, and every step is a single pass over the bytes.
local decode = require "message.decode"
local byte, sub = string.byte, string.sub

local M = {}

M.MAX_VALUE = 65536
M.MAX_ADDRESSES = 1000
local MAX_COMMENT_DEPTH = 32

function M.unfold(value)
    return (value:gsub("\r?\n([ \t])", "%1"):gsub("\r?\n$", ""))
end

function M.valid_name(name)
    return type(name) == "string" and #name > 0 and #name <= 998
        and name:find("^[\33-\57\59-\126]+$") ~= nil
end

-- RFC 2047 encoded words.  White space between two encoded words is not
-- part of the text (6.2); between an encoded word and other text it is.
local function word(charset, enc, text)
    charset = charset:gsub("%*.*$", "") -- RFC 2231 language tag
    local bytes
    if enc == "B" or enc == "b" then bytes = decode.base64(text) else bytes = decode.q(text) end
    return decode.to_utf8(charset, bytes)
end

function M.decode_words(s)
    if not s:find("=?", 1, true) then return s end
    s = s:gsub("(%?=)%s+(=%?)", "%1%2")
    return (s:gsub("=%?([^?%s]+)%?([BbQq])%?([^?%s]*)%?=", word))
end

-- The tokenizer: atoms, quoted strings, domain literals and specials, with
-- comments and white space skipped but remembered (display names keep one
-- space where the source had any).
local SPECIAL = {}
for c in ("()<>[]:;@\\,.\""):gmatch(".") do SPECIAL[byte(c)] = true end
local function is_space(b) return b == 32 or b == 9 or b == 13 or b == 10 end

local function tokenize(s)
    local tokens, i, n, space = {}, 1, #s, false
    while i <= n do
        local b = byte(s, i)
        if is_space(b) then
            space = true
            i = i + 1
        elseif b == 40 then -- "(": a comment, nested, with quoted pairs
            local depth = 0
            repeat
                local c = byte(s, i)
                if c == nil then return nil, "unterminated comment" end
                if c == 92 then i = i + 1
                elseif c == 40 then
                    depth = depth + 1
                    if depth > MAX_COMMENT_DEPTH then return nil, "comments nested too deep" end
                elseif c == 41 then depth = depth - 1 end
                i = i + 1
            until depth == 0
            space = true
        elseif b == 34 then -- a quoted string: "\x" is x
            local parts, j = {}, i + 1
            while true do
                local c = byte(s, j)
                if c == nil then return nil, "unterminated quoted string" end
                if c == 34 then break end
                if c == 92 then
                    j = j + 1
                    if j > n then return nil, "unterminated quoted string" end
                end
                parts[#parts + 1] = sub(s, j, j)
                j = j + 1
            end
            tokens[#tokens + 1] = { t = "qs", v = table.concat(parts), space = space }
            space = false
            i = j + 1
        elseif b == 91 then -- a domain literal
            local j = s:find("]", i + 1, true)
            if not j then return nil, "unterminated domain literal" end
            tokens[#tokens + 1] = { t = "atom", v = sub(s, i, j), space = space }
            space = false
            i = j + 1
        elseif SPECIAL[b] then
            if b == 41 then return nil, "unbalanced ')'" end
            if b == 93 then return nil, "unbalanced ']'" end
            tokens[#tokens + 1] = { t = sub(s, i, i), space = space }
            space = false
            i = i + 1
        elseif b < 32 or b == 127 then
            return nil, string.format("control character \\%d", b)
        else
            local j = i
            while j < n do
                local c = byte(s, j + 1)
                if SPECIAL[c] or is_space(c) or c < 32 or c == 127 then break end
                j = j + 1
            end
            tokens[#tokens + 1] = { t = "atom", v = sub(s, i, j), space = space }
            space = false
            i = j + 1
        end
    end
    tokens[#tokens + 1] = { t = "end" }
    return tokens
end

-- A local part as written: a quoted one keeps its quotes (and needs its
-- escapes back).
local function written(tok)
    if tok.t == "qs" then
        return '"' .. tok.v:gsub('([\\"])', "\\%1") .. '"'
    end
    return tok.v
end

local Parser = {}
Parser.__index = Parser

function Parser:peek() return self.tokens[self.i] end
function Parser:next()
    local t = self.tokens[self.i]
    self.i = self.i + 1
    return t
end

-- phrase: words (atom, quoted string) and obsolete dots, as display text
function Parser:phrase()
    local parts = {}
    while true do
        local t = self:peek()
        if t.t == "atom" or t.t == "qs" or (t.t == "." and #parts > 0) then
            if #parts > 0 and t.space then parts[#parts + 1] = " " end
            parts[#parts + 1] = t.v or "."
            self.i = self.i + 1
        else
            break
        end
    end
    return parts
end

-- addr-spec after its first word: ("." word)* "@" domain
function Parser:addr_spec(first)
    local lp = { written(first) }
    while self:peek().t == "." do
        self.i = self.i + 1
        local w = self:next()
        if w.t ~= "atom" and w.t ~= "qs" then return nil, "bad local part" end
        lp[#lp + 1] = "." .. written(w)
    end
    if self:next().t ~= "@" then return nil, "expected '@' in address" end
    local d = self:next()
    if d.t ~= "atom" then return nil, "expected a domain after '@'" end
    local dom = { d.v }
    while self:peek().t == "." do
        self.i = self.i + 1
        local w = self:next()
        if w.t ~= "atom" then return nil, "bad domain" end
        dom[#dom + 1] = "." .. w.v
    end
    return table.concat(lp) .. "@" .. table.concat(dom)
end

-- angle-addr after "<": [obs-route] addr-spec ">"
function Parser:angle_addr()
    if self:peek().t == "@" or self:peek().t == "," then -- obs-route: @a,@b:
        while self:peek().t ~= ":" do
            local t = self:next().t
            if t == "end" or t == ">" then return nil, "bad route in angle address" end
        end
        self.i = self.i + 1
    end
    local first = self:next()
    if first.t == ">" then return "" end -- <>: the null address
    if first.t ~= "atom" and first.t ~= "qs" then return nil, "expected an address after '<'" end
    local a, err = self:addr_spec(first)
    if not a then return nil, err end
    if self:next().t ~= ">" then return nil, "expected '>' after the address" end
    return a
end

-- mailbox: name-addr or addr-spec
function Parser:mailbox(group)
    local start = self.i
    local words = self:phrase()
    local t = self:peek()
    if t.t == "<" then
        self.i = self.i + 1
        local a, err = self:angle_addr()
        if not a then return nil, err end
        return { display = M.decode_words(table.concat(words)), address = a, group = group }
    end
    -- not a name-addr: read it again as an addr-spec
    self.i = start
    local first = self:next()
    if first.t ~= "atom" and first.t ~= "qs" then
        return nil, "expected an address, found '" .. (first.v or first.t) .. "'"
    end
    local a, err = self:addr_spec(first)
    if not a then return nil, err end
    return { display = "", address = a, group = group }
end

function Parser:add(list, m)
    if #list >= M.MAX_ADDRESSES then return nil, "more than " .. M.MAX_ADDRESSES .. " addresses" end
    list[#list + 1] = m
    return true
end

-- address: group or mailbox; the list gets its mailboxes
function Parser:address(list)
    local start = self.i
    local words = self:phrase()
    if self:peek().t == ":" and #words > 0 then
        self.i = self.i + 1
        self.groups = true
        local name = M.decode_words(table.concat(words))
        while true do
            local t = self:peek().t
            if t == ";" then self.i = self.i + 1; return true end
            if t == "end" then return true end -- obsolete: a group without ";"
            if t == "," then
                self.i = self.i + 1
            else
                local m, err = self:mailbox(name)
                if not m then return nil, err end
                local ok, e2 = self:add(list, m)
                if not ok then return nil, e2 end
            end
        end
    end
    self.i = start
    local m, err = self:mailbox(nil)
    if not m then return nil, err end
    return self:add(list, m)
end

function M.parse_address_list(value)
    if type(value) ~= "string" then error("rfc5322.parse_address_list: string expected", 2) end
    if #value > M.MAX_VALUE then return nil, "header value too long" end
    local tokens, err = tokenize(M.unfold(value))
    if not tokens then return nil, err end
    local p = setmetatable({ tokens = tokens, i = 1 }, Parser)
    local list = {}
    while p:peek().t ~= "end" do
        if p:peek().t == "," then
            p.i = p.i + 1 -- an empty element (obs-addr-list)
        else
            local ok, e = p:address(list)
            if not ok then return nil, e end
            local t = p:peek().t
            if t ~= "," and t ~= "end" then
                return nil, "expected ',' between addresses, found '" .. (p:peek().v or t) .. "'"
            end
        end
    end
    -- only empty groups ("undisclosed-recipients:;") is a valid, empty list
    if #list == 0 and not p.groups then return nil, "no address" end
    return list
end

-- msg-id (3.6.4) after "<": id-left "@" id-right ">".  The obsolete forms
-- (4.5.4) are read: an id-left that is any local-part (quoted strings), an
-- id-right that is any domain, CFWS between their words.  Returns the index
-- after ">" and the id as written.
local function word_tok(t) return (t.t == "atom" and byte(t.v) ~= 91) or t.t == "qs" end

local function msg_id(tokens, i)
    if not word_tok(tokens[i]) then return nil, "expected an id after '<'" end
    local parts = { written(tokens[i]) }
    i = i + 1
    while tokens[i].t == "." do
        if not word_tok(tokens[i + 1]) then return nil, "bad id-left in msg-id" end
        parts[#parts + 1] = "." .. written(tokens[i + 1])
        i = i + 2
    end
    if tokens[i].t ~= "@" then return nil, "expected '@' in msg-id" end
    local d = tokens[i + 1]
    if d.t ~= "atom" then return nil, "expected an id-right after '@' in msg-id" end
    parts[#parts + 1] = "@" .. d.v
    i = i + 2
    if byte(d.v) ~= 91 then
        while tokens[i].t == "." do
            if not (tokens[i + 1].t == "atom" and byte(tokens[i + 1].v) ~= 91) then
                return nil, "bad id-right in msg-id"
            end
            parts[#parts + 1] = "." .. tokens[i + 1].v
            i = i + 2
        end
    end
    if tokens[i].t ~= ">" then return nil, "expected '>' after the msg-id" end
    return i + 1, "<" .. table.concat(parts) .. ">"
end

-- Message-ID takes one msg-id; In-Reply-To and References 1*msg-id, or in
-- their obsolete form (4.5.4, obsolete_phrases) words and dots between
-- them, even none.
function M.parse_msg_ids(value, obsolete_phrases)
    if type(value) ~= "string" then error("rfc5322.parse_msg_ids: string expected", 2) end
    if #value > M.MAX_VALUE then return nil, "header value too long" end
    local tokens, err = tokenize(M.unfold(value))
    if not tokens then return nil, err end
    local ids, i = {}, 1
    while tokens[i].t ~= "end" do
        local t = tokens[i]
        if t.t == "<" then
            local j, id = msg_id(tokens, i + 1)
            if not j then return nil, id end
            ids[#ids + 1] = id
            i = j
        elseif obsolete_phrases and (word_tok(t) or t.t == ".") then
            i = i + 1
        else
            return nil, "expected a msg-id <left@right>, found '" .. (t.v or t.t) .. "'"
        end
    end
    if #ids == 0 and not obsolete_phrases then return nil, "no msg-id" end
    return ids
end

-- date-time (3.3) and its obsolete forms (4.3): comments anywhere, white
-- space optional where obs- syntax makes it so, a 2- or 3-digit year, the
-- zones UT, GMT, EST ... PDT and the military letters.  The date must
-- exist, the day of the week (if given) be that date's, hours 0-23,
-- minutes 0-59, seconds 0-60, a numeric zone's minutes 0-59.
local MONTHS = { jan = 1, feb = 2, mar = 3, apr = 4, may = 5, jun = 6, jul = 7, aug = 8,
    sep = 9, oct = 10, nov = 11, dec = 12 }
local DAYS = { mon = 1, tue = 2, wed = 3, thu = 4, fri = 5, sat = 6, sun = 7 }
local ZONES = { ut = 0, gmt = 0, est = -300, edt = -240, cst = -360, cdt = -300,
    mst = -420, mdt = -360, pst = -480, pdt = -420 }

-- the value without its comments (each becomes a space), or nil, reason
local function strip_comments(s)
    if not s:find("[()]") then return s end
    local out, depth, i, n, from = {}, 0, 1, #s, 1
    while i <= n do
        local b = byte(s, i)
        if depth > 0 and b == 92 then
            i = i + 2
        elseif b == 40 then
            if depth == 0 then out[#out + 1] = sub(s, from, i - 1) end
            depth = depth + 1
            if depth > MAX_COMMENT_DEPTH then return nil, "comments nested too deep" end
            i = i + 1
        elseif b == 41 then
            if depth == 0 then return nil, "unbalanced ')'" end
            depth = depth - 1
            i = i + 1
            if depth == 0 then
                out[#out + 1] = " "
                from = i
            end
        else
            i = i + 1
        end
    end
    if depth > 0 then return nil, "unterminated comment" end
    out[#out + 1] = sub(s, from)
    return table.concat(out)
end

local function days_in(month, year)
    if month == 2 then
        local leap = (year % 4 == 0 and year % 100 ~= 0) or year % 400 == 0
        return leap and 29 or 28
    end
    return (month == 4 or month == 6 or month == 9 or month == 11) and 30 or 31
end

-- 1 = Monday ... 7 = Sunday (Sakamoto's method)
local function weekday(y, m, d)
    local t = { 0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4 }
    if m < 3 then y = y - 1 end
    local w = (y + math.floor(y / 4) - math.floor(y / 100) + math.floor(y / 400) + t[m] + d) % 7
    return w == 0 and 7 or w
end

function M.parse_date(value)
    if type(value) ~= "string" then error("rfc5322.parse_date: string expected", 2) end
    if #value > 998 then return nil, "too long for a date" end
    local s, err = strip_comments(M.unfold(value))
    if not s then return nil, err end
    if s:find("[^%w \t\r\n,:+%-]") then return nil, "a character no date-time has" end
    local dow, rest = s:match("^%s*(%a+)%s*,(.*)$")
    if dow then
        dow = DAYS[dow:lower()]
        if not dow then return nil, "not a day of the week" end
    else
        rest = s
    end
    local day, mon, year, hh, mm, tail =
        rest:match("^%s*(%d%d?)%s*(%a+)%s*(%d%d+)%s+(%d%d)%s*:%s*(%d%d)(.*)$")
    if not day then return nil, "not day month year hh:mm" end
    local month = MONTHS[mon:lower()]
    if not month then return nil, "not a month: " .. mon:sub(1, 20) end
    local sec, zrest = tail:match("^%s*:%s*(%d%d)(.*)$")
    if sec then tail = zrest end
    local zone
    local sign, zh, zm = tail:match("^%s+([+-])(%d%d)(%d%d)%s*$")
    if sign then
        if tonumber(zm) > 59 then return nil, "zone minutes over 59" end
        zone = (tonumber(zh) * 60 + tonumber(zm)) * (sign == "-" and -1 or 1)
    else
        local name = tail:match("^%s*(%a+)%s*$")
        name = name and name:lower()
        if name and ZONES[name] then
            zone = ZONES[name]
        elseif name and #name == 1 and name ~= "j" then
            zone = 0 -- military zones mean -0000 (4.3)
        else
            return nil, "no zone (+hhmm, -hhmm or an obsolete name)"
        end
    end
    local y = tonumber(year)
    if #year == 2 then y = y + (y < 50 and 2000 or 1900) elseif #year == 3 then y = y + 1900 end
    if y < 1900 then return nil, "a year before 1900" end
    local d, h, mi = tonumber(day), tonumber(hh), tonumber(mm)
    local se = sec and tonumber(sec) or 0
    if d < 1 or d > days_in(month, y) then return nil, "no such day" end
    if h > 23 or mi > 59 or se > 60 then return nil, "no such time" end
    if dow and dow ~= weekday(y, month, d) then return nil, "the day of the week is not the date's" end
    return { year = y, month = month, day = d, hour = h, min = mi, sec = se, zone = zone }
end

-- A field as "Name: value" on the wire: its first line is the name, the
-- colon and the value's first line (the milter leaves out the space after
-- the colon, so that one is not counted); folded lines follow.
function M.longest_line(name, value)
    local longest, first = 0, true
    for line in (value .. "\n"):gmatch("([^\n]*)\n") do
        local len = #line - (byte(line, #line) == 13 and 1 or 0)
        if first then len = len + #name + 1 end
        first = false
        if len > longest then longest = len end
    end
    return longest
end

return M
