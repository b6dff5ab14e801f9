-- Mail addresses in one normal form, so that counters, policies and the
-- directory all name a sender the same way (docs/lua-api.md).
--
--   address.parse(s)              -> {local_part, domain, tag} | {null = true} | nil, "badaddress"
--   address.normalize(s [, opts]) -> "local@domain" | "" (null sender) | nil, "badaddress"
--   address.subject(req [, opts]) -> what a per-sender limit counts
--   address.untagged(s [, separators]) -> "local@domain" without its +tag, or nil
--   address.without_realm(login)  -> "alice" for "alice@example.org", or nil
--
-- The normal form: surrounding <> and spaces removed; the domain through
-- outpost.domain (lower case, no trailing dot, IDN as A-labels); the local
-- part in lower case, as the directory compares mail addresses
-- (caseIgnoreIA5Match), unless opts.keep_case; a +tag removed unless
-- opts.strip_tag == false (opts.separators lists the tag characters,
-- default "+").

-- The globals read on every request, as locals: a global is a lookup
-- through the file's frozen environment and the sandbox's tables.
local type = type
local outpost = require "outpost"

local M = {}

local MAX_LOCAL, MAX_ADDRESS = 64, 254
local NO_OPTS = {}
local NULL = { null = true } -- shared, as every answer of parse
local byte, find, sub = string.byte, string.find, string.sub

-- The position of the last "@" in s, or nil: plain finds, cheaper than a
-- pattern (s:match("^.*()@")), though Debian's LuaJIT 2.1 stitches its
-- trace at string.find all the same; and no loop for the usual single "@"
-- (a loop inside a function's trace aborts it: "inner loop in root
-- trace").
local function last_of_several(s, at)
    local next_at = find(s, "@", at + 1, true)
    while next_at do
        at = next_at
        next_at = find(s, "@", at + 1, true)
    end
    return at
end
local function last_at(s)
    local at = find(s, "@", 1, true)
    if not at then return nil end
    if not find(s, "@", at + 1, true) then return at end
    local last = last_of_several(s, at)
    return last
end

-- The first of the separators seps in lp after its first character.
local function first_separator(lp, seps)
    if #seps == 1 then
        local i = find(lp, seps, 2, true)
        return i -- not a tail call of find (action.lua's make says why)
    end
    local cut
    for k = 1, #seps do
        local i = find(lp, sub(seps, k, k), 2, true)
        if i and (not cut or i < cut) then cut = i end
    end
    return cut
end

local function parse(s, opts)
    opts = opts or NO_OPTS
    -- spaces (and controls) around it go; most addresses have none
    local first, last = byte(s, 1), byte(s, -1)
    if not first or first <= 32 or last <= 32 then s = s:match("^%s*(.*%S)") or "" end
    if byte(s, 1) == 60 and byte(s, -1) == 62 then s = sub(s, 2, -2) end -- <...>
    if s == "" then return NULL end
    local at = last_at(s)
    if not at or at == 1 or at == #s then return nil, "badaddress" end
    local lp, dom = sub(s, 1, at - 1), sub(s, at + 1)
    local quoted = byte(lp, 1) == 34 -- "..."@
    if #lp > MAX_LOCAL or #s > MAX_ADDRESS or not quoted and lp:find("[%c%s]") then
        return nil, "badaddress"
    end
    local domain = outpost.domain(dom)
    if not domain then return nil, "badaddress" end
    local tag
    if opts.strip_tag ~= false and not quoted then
        local cut = first_separator(lp, opts.separators or "+")
        if cut then
            tag = sub(lp, cut + 1)
            lp = sub(lp, 1, cut - 1)
        end
    end
    if not opts.keep_case then lp = lp:lower() end
    return { local_part = lp, domain = domain, tag = tag }
end

-- Answers of parse and normalize, by opts (the table itself) and string: a
-- request reads the same few addresses several times (sender, recipient,
-- login, the directory's comparisons), and the next request of the same
-- user the same ones again.  parse's tables are shared: read-only.  Each
-- cache is emptied when it grows past CACHE_MAX.  A lookup and a store,
-- not one wrapper around the function: normalize calls parse, and the
-- same wrapper's function called inside itself was a recursion that
-- stopped the JIT's traces.
local CACHE_MAX = 10000

local function new_cache()
    return { by_opts = setmetatable({}, { __mode = "k" }), count = 0 }
end

-- the cached answer: a value, false for "badaddress", or nil when unknown
local function lookup(cache, s, opts)
    local by_opts = cache.by_opts[opts or NO_OPTS]
    return by_opts and by_opts[s]
end

local function store(cache, s, opts, v)
    if cache.count >= CACHE_MAX then
        cache.by_opts, cache.count = setmetatable({}, { __mode = "k" }), 0
    end
    local key = opts or NO_OPTS
    local by_opts = cache.by_opts[key]
    if by_opts == nil then
        by_opts = {}
        cache.by_opts[key] = by_opts
    end
    by_opts[s] = v or false
    cache.count = cache.count + 1
end

local parsed = new_cache()
function M.parse(s, opts)
    if type(s) ~= "string" then error("address.parse: string expected, got " .. type(s), 2) end
    local hit = lookup(parsed, s, opts)
    if hit then return hit end
    if hit == false then return nil, "badaddress" end
    local v, err = parse(s, opts)
    store(parsed, s, opts, v)
    return v, err
end

local normalized = new_cache()
function M.normalize(s, opts)
    if type(s) ~= "string" then error("address.parse: string expected, got " .. type(s), 2) end
    local hit = lookup(normalized, s, opts)
    if hit then return hit end
    if hit == false then return nil, "badaddress" end
    local a, err = M.parse(s, opts)
    local v = a and (a.null and "" or a.local_part .. "@" .. a.domain)
    store(normalized, s, opts, v)
    if not v then return nil, err end
    return v
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

-- A login without its realm: "alice@example.org" -> "alice"; nil when it
-- has none (as login:match("^(.+)@[^@]+$")).  Asked per request (PO3's
-- lock list, the directory's login rule), so each answer is kept, by
-- login (false: none): a table read is all a trace needs, where
-- string.find would stitch it.  Emptied when it holds CACHE_MAX logins.
local realms, realms_count = {}, 0
function M.without_realm(login)
    local bare = realms[login]
    if bare == nil then
        local at = last_at(login)
        bare = at and at > 1 and at < #login and sub(login, 1, at - 1) or false
        if realms_count >= CACHE_MAX then realms, realms_count = {}, 0 end
        realms[login] = bare
        realms_count = realms_count + 1
    end
    return bare or nil
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
        local lower = user:lower()
        return lower
    end
    local sender = attrs.sender or ""
    local a = M.normalize(sender, opts)
    if a and a ~= "" then return a end
    return "<>@" .. (attrs.client_address or "unknown")
end

return M
