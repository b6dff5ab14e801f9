-- directory: the mail directory in the words policies use (PO3, PO4, PO6,
-- PO7, MO5, MO6, AO3, AO4, AO5, AO7, AO8).
--
--   local directory = require "site.directory"
--   local user, err = directory.user(req.attrs.sasl_username)
--   if err then return A.defer("4.3.0", "directory unavailable, try again later") end
--   if not user then return A.reject("5.7.1", "unknown user") end
--   if user.locked then ... end
--   if not directory.may_send_as(user, sender) then ... end
--
-- Every function waits for the LDAP service (outpost.ldap) unless the
-- answer is cached, and returns nil, token when the directory cannot
-- answer ("timeout", "unavailable", "nosuchobject", "sizelimit", "invalid",
-- or "ambiguous" when a login name matches several entries): a policy
-- answers 4xx then, never 5xx.  A definite "no" is false, never nil.
--
-- Base DN, filter templates and attribute names come from the directory { }
-- section of the configuration (docs/config.md), so another schema needs no
-- change here.  Addresses are compared in one normal form: the local part
-- in lower case, the domain as outpost.domain() gives it.
--
-- The tables returned are shared between requests while the directory's
-- answer stays cached (outpost.ldap keeps one decoded copy per answer):
-- read them, never change them.
local core = require "outpost"
local address = require "site.address"
local ldap = require "outpost.ldap"

-- The directory { } settings of this generation, as the configuration
-- layer hands them over (defaults applied).
local settings = core.config().directory

local M = {}

-- "Local@Dom.Example." -> "local@dom.example", or nil when it is no
-- address: address.lua's normal form (the one counters use too), keeping
-- a +tag, since the directory lists addresses as they are written.
local KEEP_TAG = { strip_tag = false }
function M.normalize_address(s)
    if type(s) ~= "string" then return nil end
    local n = address.normalize(s, KEEP_TAG)
    if n == nil or n == "" then return nil end
    return n
end

local function want_string(v, what, level)
    if type(v) ~= "string" or v == "" then
        error(what .. " must be a non-empty string", level + 1)
    end
end

local function search(filter, value, attrs)
    local s = settings
    return ldap.search { base = s.base, filter = filter, args = { value }, attrs = attrs }
end

-- Exactly one entry, false for none, nil + token otherwise.
local function one(filter, value, attrs)
    local r, err = search(filter, value, attrs)
    if r == nil then return nil, err end
    if #r == 0 then return false end
    if #r > 1 then return nil, "ambiguous" end
    return r[1]
end

local function exists(filter, value)
    local r, err = search(filter, value, { "1.1" }) -- "1.1": no attributes
    if r == nil then return nil, err end
    return #r > 0
end

-- What was derived from an answer, by the answer's list (outpost.ldap
-- returns the same list while the answer is cached): a request reads the
-- entry it needs without building it again.  Weak keys: an answer that
-- leaves the cache takes its derived value with it.
local derived = setmetatable({}, { __mode = "k" })
local user_attrs = setmetatable({}, { __mode = "k" })

local function account_attrs(s, extra)
    local attrs = {}
    for _, a in ipairs(s.sender_attrs) do attrs[#attrs + 1] = a end
    attrs[#attrs + 1] = s.limit_attr
    attrs[#attrs + 1] = s.lock_attr
    for _, a in ipairs(extra or {}) do attrs[#attrs + 1] = a end
    return attrs
end

-- addresses (a list, directory order, without duplicates) and senders (a
-- set of the same) from every sender attribute.
local function addresses_of(s, entry)
    local list, set = {}, {}
    for _, a in ipairs(s.sender_attrs) do
        for _, v in ipairs(entry.attrs[a] or {}) do
            local n = M.normalize_address(v)
            if n ~= nil and not set[n] then
                set[n] = true
                list[#list + 1] = n
            end
        end
    end
    return list, set
end

local function integer_of(entry, attr)
    local v = entry.attrs[attr]
    local n = v and tonumber(v[1])
    if n ~= nil and n >= 0 and n == math.floor(n) then return n end
    return nil
end

-- PO3, PO4, PO7: the user with login name uid.
--   { uid, dn, locked, addresses = {...}, senders = {[address] = true},
--     limit = recipients per 24 h (the directory's tier or default_limit) }
-- false when no such user.
function M.user(uid)
    want_string(uid, "directory.user: uid", 2)
    local s = settings
    local attrs = user_attrs[s]
    if attrs == nil then
        attrs = account_attrs(s)
        user_attrs[s] = attrs
    end
    local r, err = search(s.user_filter, uid, attrs)
    if r == nil then return nil, err end
    local u = derived[r]
    if u ~= nil then return u end
    if #r == 0 then
        u = false
    elseif #r > 1 then
        return nil, "ambiguous"
    else
        local e = r[1]
        local addresses, senders = addresses_of(s, e)
        u = {
            uid = uid,
            dn = e.dn,
            locked = e.attrs[s.lock_attr] ~= nil,
            addresses = addresses,
            senders = senders,
            limit = integer_of(e, s.limit_attr) or s.default_limit,
        }
    end
    derived[r] = u
    return u
end

-- PO4, AO4: may the account (from user() or function_account()) send as
-- address?  Compares normal forms.
function M.may_send_as(account, address)
    if type(account) ~= "table" or type(account.senders) ~= "table" then
        error("directory.may_send_as: account must come from directory.user or directory.function_account", 2)
    end
    local n = M.normalize_address(address)
    return n ~= nil and account.senders[n] == true
end

-- PO6, MO5, AO7: does anything in the directory receive mail at address?
-- false for a string that is no address.
-- Is there an entry for address under the filter named filter_key?  false
-- for a string that is no address.
local function address_exists(filter_key, address)
    local n = M.normalize_address(address)
    if n == nil then return false end
    return exists(settings[filter_key], n)
end

function M.mailbox_exists(address)
    want_string(address, "directory.mailbox_exists: address", 2)
    return address_exists("address_filter", address)
end

-- PO6, MO5: is domain one of the institution's own mail domains?
function M.is_local_domain(domain)
    want_string(domain, "directory.is_local_domain: domain", 2)
    local d = core.domain(domain)
    if d == nil then return false end
    return exists(settings.domain_filter, d)
end

-- MO6: does address accept only authenticated senders (distribution lists)?
function M.requires_authenticated_sender(address)
    want_string(address, "directory.requires_authenticated_sender: address", 2)
    return address_exists("protected_filter", address)
end

-- AO3, AO4, AO5, AO8: the appout function account with login name uid.
--   { uid, dn, locked, addresses, senders, limit = agreed send limit or nil,
--     networks = {"10.0.0.0/8", ...} (empty: the campus default applies),
--     tenants = {[tenant] = true} }
-- false when no such account.
function M.function_account(uid)
    want_string(uid, "directory.function_account: uid", 2)
    local s = settings
    local e, err = one(s.function_filter, uid, account_attrs(s, { s.networks_attr, s.tenants_attr }))
    if not e then return e, err end
    local addresses, senders = addresses_of(s, e)
    local networks, tenants = {}, {}
    for _, v in ipairs(e.attrs[s.networks_attr] or {}) do networks[#networks + 1] = v end
    for _, v in ipairs(e.attrs[s.tenants_attr] or {}) do tenants[v:lower()] = true end
    return {
        uid = uid,
        dn = e.dn,
        locked = e.attrs[s.lock_attr] ~= nil,
        addresses = addresses,
        senders = senders,
        limit = integer_of(e, s.limit_attr),
        networks = networks,
        tenants = tenants,
    }
end

-- AO8 (appout stage 2, which has no SASL login, only the envelope sender):
-- the function account that may send as address, as function_account()
-- gives it; false when no function account has the address, nil, token
-- when the directory cannot answer ("ambiguous" when several have it).
-- One search finds the login name: function_filter with its value made a
-- wildcard ("(&(objectClass=X)(uid=%s))" -> "(&(objectClass=X)(uid=*))",
-- every function account) and address_filter for the address; then
-- function_account(login) (both answers cached).
function M.function_account_by_sender(address)
    want_string(address, "directory.function_account_by_sender: address", 2)
    local n = M.normalize_address(address)
    if n == nil then return false end
    local s = settings
    local login = s.function_filter:match("%(([%w%.;%-]+)=%%[s1]%)") or "uid"
    local any = s.function_filter:gsub("%%(.)", function(c)
        if c == "s" or c:match("%d") then return "*" end
        return "%" .. c
    end)
    local e, err = one("(&" .. any .. s.address_filter .. ")", n, { login })
    if not e then return e, err end
    local uid = e.attrs[login] and e.attrs[login][1]
    if uid == nil or uid == "" then return nil, "invalid" end
    return M.function_account(uid)
end

return M
