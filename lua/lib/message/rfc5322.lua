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

return M
