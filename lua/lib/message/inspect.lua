-- message.inspect: what a message's header and body show, for the
-- message checks of a milter policy's on_eom (docs/milter.md, "The message
-- checks"); site.message_checks turns the findings into answers.
--
--   inspect.po8(headers, senders)          -> nil | offending, why
--   inspect.g3(headers)                    -> nil | {rule =, reason =}
--   inspect.g4(headers, body, shorteners [, limits])
--                                            -> nil | {host =, part =}, truncated
--
-- Each returns nil when the message passes, so a pipeline check reads
--   local bad = inspect.g3(tx.headers); if bad then return A.reject(...) end
local address = require "site.address"
local rfc5322 = require "message.rfc5322"
local mime = require "message.mime"
local links = require "message.links"
local outpost = require "outpost"

local M = {}

-- PO8 ----------------------------------------------------------------------
-- Every address in every From header, and any address a display name shows
-- ("alice@example.org" <boss@evil.example> shows alice's address but is
-- boss's; "boss@example.org" <alice@example.org> shows boss's), must be one
-- of the user's.  senders: the user's addresses, a set ({[a] = true}, as
-- directory.user() gives) or a list; compared in address.lua's normal form,
-- so case and IDN spellings do not matter, and a +tag of one of the user's
-- addresses is the user's.
local function normal_set(senders)
    local set = {}
    for k, v in pairs(senders) do
        local a = type(k) == "string" and v == true and k or (type(v) == "string" and v) or nil
        local n = a and address.normalize(a, { strip_tag = false })
        if n and n ~= "" then set[n] = true end
    end
    return set
end

local function is_users(set, a)
    local with_tag = address.normalize(a, { strip_tag = false })
    if with_tag == nil or with_tag == "" then return false end
    return set[with_tag] == true or set[address.normalize(a)] == true
end

function M.po8(headers, senders)
    local set = normal_set(senders)
    for _, h in ipairs(headers) do
        if h.name:lower() == "from" then
            local list, err = rfc5322.parse_address_list(h.value)
            if not list then return rfc5322.unfold(h.value), "the From header cannot be read: " .. err end
            for _, m in ipairs(list) do
                if not is_users(set, m.address) then return m.address, "not an address of the user" end
                -- an address in the display name is what the recipient reads
                -- (words first, then "@" in a word: one pass, no rescans)
                for shown in m.display:gmatch("[^%s<>\"'(),;:]+") do
                    if #shown <= 254 and shown:find("^[^@]+@[^@]+$")
                        and address.normalize(shown) and not is_users(set, shown) then
                        return shown, "the display name shows an address that is not the user's"
                    end
                end
            end
        end
    end
    return nil
end

-- G3 -----------------------------------------------------------------------
-- RFC 5322 3.6: the fields a message has at most once, and those it must have.
local SINGLE = { "date", "from", "sender", "reply-to", "to", "cc", "bcc", "message-id",
    "in-reply-to", "references", "subject" }
local CANONICAL = { date = "Date", from = "From", sender = "Sender", ["reply-to"] = "Reply-To",
    to = "To", cc = "Cc", bcc = "Bcc", ["message-id"] = "Message-ID", ["in-reply-to"] = "In-Reply-To",
    references = "References", subject = "Subject" }

local function violation(rule, fmt, ...)
    return { rule = rule, reason = string.format(fmt, ...) }
end

-- The fields whose syntax G3 reads (3.3, 3.4, 3.6.2-3.6.4), in the order
-- their rules apply; a field not here is checked for its name and line
-- length only.
local function address_list(v) return rfc5322.parse_address_list(v) end
local FIELD_RULES = {
    { "sender", "sender-syntax", function(v)
        local list, err = rfc5322.parse_address_list(v)
        if not list then return nil, err end
        if #list ~= 1 then return nil, "it has " .. #list .. " addresses, RFC 5322 3.6.2 allows one" end
        return true
    end },
    { "date", "date-syntax", rfc5322.parse_date },
    { "message-id", "message-id-syntax", function(v) return rfc5322.parse_msg_ids(v) end, "one" },
    { "in-reply-to", "msg-id-syntax", function(v) return rfc5322.parse_msg_ids(v, true) end },
    { "references", "msg-id-syntax", function(v) return rfc5322.parse_msg_ids(v, true) end },
    { "reply-to", "address-syntax", address_list },
    { "to", "address-syntax", address_list },
    { "cc", "address-syntax", address_list },
    -- Bcc may be empty (3.6.3)
    { "bcc", "address-syntax", function(v)
        if not rfc5322.unfold(v):find("[^ \t]") then return true end
        return rfc5322.parse_address_list(v)
    end },
}

local function printable(s) return (s:gsub("[%c\128-\255]", "?"):sub(1, 60)) end

function M.g3(headers)
    local count, first = {}, {}
    for _, h in ipairs(headers) do
        if not rfc5322.valid_name(h.name) then
            return violation("header-name", "header name %q is not RFC 5322 field name syntax",
                printable(h.name))
        end
        local longest = rfc5322.longest_line(h.name, h.value)
        if longest > 998 then
            return violation("line-length", "a line of the %s header has %d characters, RFC 5322 2.1.1 allows 998",
                printable(h.name), longest)
        end
        local n = h.name:lower()
        count[n] = (count[n] or 0) + 1
        first[n] = first[n] or h.value
    end
    if not count.from then return violation("from-missing", "no From header") end
    if not count.date then return violation("date-missing", "no Date header") end
    if not count["message-id"] then return violation("message-id-missing", "no Message-ID header") end
    for _, n in ipairs(SINGLE) do
        if (count[n] or 0) > 1 then
            return violation("duplicate", "%d %s headers, RFC 5322 3.6 allows one", count[n], CANONICAL[n])
        end
    end
    local from, err = rfc5322.parse_address_list(first.from)
    if not from then return violation("from-syntax", "the From header is not an address list: %s", err) end
    if #from == 0 then return violation("from-syntax", "the From header has no address") end
    if #from > 1 and not count.sender then
        return violation("sender-missing", "From has %d addresses and there is no Sender header", #from)
    end
    for _, r in ipairs(FIELD_RULES) do
        local v = first[r[1]]
        if v then
            local ok, why = r[3](v)
            if ok and r[4] == "one" and #ok ~= 1 then
                ok, why = nil, #ok .. " msg-ids, RFC 5322 3.6.4 allows one"
            end
            if not ok then
                if r[2] == "message-id-syntax" then
                    return violation(r[2], "Message-ID is not <left@right>: %s", why)
                end
                return violation(r[2], "the %s header is not RFC 5322 syntax: %s", CANONICAL[r[1]], why)
            end
        end
    end
    return nil
end

-- G4 -----------------------------------------------------------------------
-- shorteners: a set of domains in outpost.domain form (lists.domains gives
-- one).  A host matches when it or a parent domain is listed, so www.bit.ly
-- and m.bit.ly are bit.ly; a host with non-ASCII bytes is compared as its
-- A-label.
local function listed(shorteners, host)
    if host:find("[\128-\255]") then
        host = outpost.domain(host)
        if not host then return nil end
    end
    local h = host
    while h do
        if shorteners[h] then return h end
        h = h:match("^[^.]*%.(.+)$")
    end
    return nil
end

function M.g4(headers, body, shorteners, limits)
    local parts, truncated = mime.text_parts(headers, body or "", limits)
    for _, p in ipairs(parts) do
        for _, host in ipairs(links.hosts(p.text, p.type == "text/html")) do
            local hit = listed(shorteners, host)
            if hit then return { host = host, domain = hit, part = p.type }, truncated end
        end
    end
    return nil, truncated
end

return M
