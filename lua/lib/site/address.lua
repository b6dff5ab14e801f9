-- Mail addresses in one normal form, so that counters, policies and the
-- directory all name a sender the same way (docs/lua-api.md).
--
--   address.parse(s)              -> {local_part, domain, tag} | {null = true} | nil, "badaddress"
--   address.normalize(s [, opts]) -> "local@domain" | "" (null sender) | nil, "badaddress"
--   address.subject(req [, opts]) -> what a per-sender limit counts
--   address.untagged(s [, separators]) -> "local@domain" without its +tag, or nil
--
-- The normal form: surrounding <> and spaces removed; the domain through
-- outpost.domain (lower case, no trailing dot, IDN as A-labels); the local
-- part in lower case, as the directory compares mail addresses
-- (caseIgnoreIA5Match), unless opts.keep_case; a +tag removed unless
-- opts.strip_tag == false (opts.separators lists the tag characters,
-- default "+").
local outpost = require "outpost"

local M = {}

local MAX_LOCAL, MAX_ADDRESS = 64, 254

local function parse(s, opts)
    opts = opts or {}
    -- spaces (and controls) around it go; most addresses have none
    local first, last = s:byte(1), s:byte(-1)
    if not first or first <= 32 or last <= 32 then s = s:match("^%s*(.*%S)") or "" end
    if s:sub(1, 1) == "<" and s:sub(-1) == ">" then s = s:sub(2, -2) end
    if s == "" then return { null = true } end
    local at = s:match("^.*()@")
    if not at or at == 1 or at == #s then return nil, "badaddress" end
    local lp, dom = s:sub(1, at - 1), s:sub(at + 1)
    if #lp > MAX_LOCAL or #s > MAX_ADDRESS or lp:find("[%c%s]") and lp:sub(1, 1) ~= '"' then
        return nil, "badaddress"
    end
    local domain = outpost.domain(dom)
    if not domain then return nil, "badaddress" end
    local tag
    if opts.strip_tag ~= false and lp:sub(1, 1) ~= '"' then
        local seps = opts.separators or "+"
        -- the first separator after the first character
        local cut
        for k = 1, #seps do
            local i = lp:find(seps:sub(k, k), 2, true)
            if i and (not cut or i < cut) then cut = i end
        end
        if cut then
            tag = lp:sub(cut + 1)
            lp = lp:sub(1, cut - 1)
        end
    end
    if not opts.keep_case then lp = lp:lower() end
    return { local_part = lp, domain = domain, tag = tag }
end

-- Answers of parse and normalize, by opts (the table itself) and string: a
-- request reads the same few addresses several times (sender, recipient,
-- login, the directory's comparisons), and the next request of the same
-- user the same ones again.  parse's tables are shared: read-only.  Each
-- cache is emptied when it grows past CACHE_MAX.
local CACHE_MAX = 10000
local NO_OPTS = {}

local function cached(fn)
    local cache, count = setmetatable({}, { __mode = "k" }), 0
    return function(s, opts)
        local by_opts = cache[opts or NO_OPTS]
        if by_opts == nil then
            by_opts = {}
            cache[opts or NO_OPTS] = by_opts
        end
        local hit = by_opts[s]
        if hit ~= nil then
            if hit == false then return nil, "badaddress" end
            return hit
        end
        local v, err = fn(s, opts)
        if count >= CACHE_MAX then
            cache, count = setmetatable({}, { __mode = "k" }), 0
            by_opts = {}
            cache[opts or NO_OPTS] = by_opts
        end
        by_opts[s] = v or false
        count = count + 1
        return v, err
    end
end

local parse_cached = cached(parse)
function M.parse(s, opts)
    if type(s) ~= "string" then error("address.parse: string expected, got " .. type(s), 2) end
    return parse_cached(s, opts)
end

local function normalize(s, opts)
    local a, err = M.parse(s, opts)
    if not a then return nil, err end
    if a.null then return "" end
    return a.local_part .. "@" .. a.domain
end

local normalize_cached = cached(normalize)
function M.normalize(s, opts)
    if type(s) ~= "string" then error("address.parse: string expected, got " .. type(s), 2) end
    return normalize_cached(s, opts)
end

-- s without its tag (separators: the tag characters, default "+"; false:
-- none), in normal form, or nil when it has none: bob+news@example.org ->
-- bob@example.org (PO4, PO6, AO7).
local KEEP_TAG = { strip_tag = false }
local untag_forms = {} -- one opts table per separators: the caches key on it
function M.untagged(s, separators)
    if separators == false then return nil end
    separators = separators or "+"
    local form = untag_forms[separators]
    if form == nil then
        form = { separators = separators }
        untag_forms[separators] = form
    end
    local n = M.normalize(s, form)
    if n and n ~= "" and n ~= M.normalize(s, KEEP_TAG) then return n end
    return nil
end

-- The subject a per-sender limit counts.  An authenticated user is counted
-- as that user whatever sender address they give (the null sender and any
-- other address included), so no choice of sender escapes the user's
-- limit.  Without SASL it is the normalised sender; the null sender then
-- counts as "<>@" .. client_address, per sending host.
function M.subject(req, opts)
    local attrs = req.attrs or req
    local user = attrs.sasl_username
    if user and user ~= "" then
        if user:find("@", 1, true) then
            local a = M.normalize(user, opts)
            if a and a ~= "" then return a end
        end
        return user:lower()
    end
    local sender = attrs.sender or ""
    local a = M.normalize(sender, opts)
    if a and a ~= "" then return a end
    return "<>@" .. (attrs.client_address or "unknown")
end

return M
