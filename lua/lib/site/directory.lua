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
-- Base DN, filter templates, attribute names and groups come from the
-- directory { } section of the configuration (docs/config.md, "Fitting your
-- directory"), so another schema needs no change here: no schema name is
-- written in this file.  A flag or set (locked, function account, enabled
-- for a tenant, protected recipient) comes from an attribute of the entry,
-- from membership of a group, or from either; a group is one entry read
-- with one cached search (outpost.ldap's cache, which also makes concurrent
-- lookups of it one search), and its member set is built once per answer.  Addresses are compared in one normal form: the local part
-- in lower case, the domain as outpost.domain() gives it.
--
-- The tables returned are shared between requests while the directory's
-- answer stays cached (outpost.ldap keeps one decoded copy per answer):
-- read them, never change them.

-- The globals read on every request, as locals: a global is a lookup
-- through the file's frozen environment and the sandbox's tables.
local type = type
local core = require "outpost"
local address = require "site.address"
local ldap = require "outpost.ldap"

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

-- What was derived from an answer, by the answer's list (outpost.ldap
-- returns the same list while the answer is cached): a request reads the
-- entry or group it needs without building it again.  Weak keys: an answer
-- that leaves the cache takes its derived value with it.  Shared by every
-- vocabulary (new()): the list is the same answer whoever derives from it,
-- and each vocabulary keys its own slot in it.
local derived = setmetatable({}, { __mode = "k" })

local function derived_of(r, slot)
    local d = derived[r]
    return d and d[slot]
end

local function derive(r, slot, v)
    local d = derived[r]
    if d == nil then
        d = {}
        derived[r] = d
    end
    d[slot] = v
    return v
end

-- "cn=A, ou=B" and "CN=a,OU=b" name one entry: compared in lower case
-- without blanks around "," and "=".  uniqueMember's optional
-- "#'0101'B" (an unique identifier, RFC 4517) is not part of the DN.
local function dn_key(dn)
    dn = dn:gsub("#'[01]*'B$", "")
    return (dn:lower():gsub("%s*([,=+])%s*", "%1"):gsub("^%s+", ""):gsub("%s+$", ""))
end

-- "[1=250, 2=500]" as the configuration hands it over -> { ["1"] = 250, ... },
-- or nil when the list is empty (the attribute is a count).
local function tier_table(list, key)
    if list == nil or #list == 0 then return nil end
    local t = {}
    for _, item in ipairs(list) do
        local k, v = item:match("^%s*([^=%s]+)%s*=%s*(%d+)%s*$")
        if k == nil then
            error(string.format("directory { %s }: '%s' is not KEY=COUNT", key, item), 0)
        end
        t[k:lower()] = tonumber(v)
    end
    return t
end

-- outpost.domain's answers (false: no domain name), by the name as given:
-- PO6, MO5 and MO6 ask for the recipient's or sender's domain on every
-- request, and a table read is cheaper than the C call (which also ends
-- the JIT's trace).  Emptied when it holds DOMAIN_CACHE names.
local DOMAIN_CACHE = 10000
local domains_seen, domains_count = {}, 0
local function domain_of(name)
    local d = domains_seen[name]
    if d == nil then
        d = core.domain(name) or false
        if domains_count >= DOMAIN_CACHE then domains_seen, domains_count = {}, 0 end
        domains_seen[name] = d
        domains_count = domains_count + 1
    end
    return d
end

local function nonempty(v)
    if v == nil or v == "" then return nil end
    return v
end

-- The vocabulary for one directory { } table (the configuration's, or a
-- spec's variant of it).
function M.new(settings)
    local s = settings
    local V = {}
    local slot = {} -- this vocabulary's key in derived
    local user_tiers = tier_table(s.user_limit_tiers, "user_limit_tiers")
    local function_tiers = tier_table(s.function_limit_tiers, "function_limit_tiers")
    local lock_attr = nonempty(s.lock_attr)
    local lock_group = nonempty(s.lock_group)
    local tenants_attr = nonempty(s.tenants_attr)
    local tenant_group = nonempty(s.tenant_group)
    local function_group = nonempty(s.function_group)
    local protected_filter = nonempty(s.protected_filter)
    local protected_group = nonempty(s.protected_group)
    -- member_attrs: which name members by DN, which by account name
    local BY_DN = { member = true, uniquemember = true }
    local MEMBER_ATTRS = {}
    for _, a in ipairs(s.member_attrs or { "member", "uniqueMember", "memberUid" }) do
        if not BY_DN[a:lower()] and a:lower() ~= "memberuid" then
            error(string.format("directory { member_attrs }: '%s' is not member, uniqueMember or memberUid", a), 0)
        end
        MEMBER_ATTRS[#MEMBER_ATTRS + 1] = a
    end
    local account_attr = s.account_attr or "uid"

    -- One query table for every search of this vocabulary, refilled per
    -- call: ldap.search reads its argument before it returns or waits
    -- (lua_api_ldap.c), and nothing else runs in between, so no request
    -- builds two tables for each lookup.
    local query_args = {}
    local query = { base = s.base, args = query_args }
    local function search(filter, value, attrs)
        query.filter, query.attrs, query_args[1] = filter, attrs, value
        return ldap.search(query)
    end

    local NO_ATTRS = { "1.1" } -- "1.1": no attributes
    local function exists(filter, value)
        local r, err = search(filter, value, NO_ATTRS)
        if r == nil then return nil, err end
        return #r > 0
    end

    -- The member set of the group with DN dn: { dn = {[dn_key] = true},
    -- uid = {[account name in lower case] = true} }.  A group that does not
    -- exist has no members.  nil, token when the directory cannot answer.
    local NO_MEMBERS = { dn = {}, uid = {} }
    local group_query = { scope = "base", filter = "(objectClass=*)", attrs = MEMBER_ATTRS }
    local function members(dn)
        group_query.base = dn -- refilled per call, as search's query
        local r, err = ldap.search(group_query)
        if r == nil then
            if err == "nosuchobject" then return NO_MEMBERS end
            return nil, err
        end
        local set = derived_of(r, slot)
        if set ~= nil then return set end
        set = { dn = {}, uid = {} }
        for i = 1, #r do
            local attrs = r[i].attrs
            for j = 1, #MEMBER_ATTRS do
                local a = MEMBER_ATTRS[j]
                local by_dn = BY_DN[a:lower()]
                local values = attrs[a]
                for k = 1, values and #values or 0 do
                    local v = values[k]
                    if by_dn then set.dn[dn_key(v)] = true else set.uid[v:lower()] = true end
                end
            end
        end
        return derive(r, slot, set)
    end
    -- Is the entry (dn, account name) a member of the group dn?
    local function is_member(group, dn, account)
        local set, err = members(group)
        if set == nil then return nil, err end
        if set.dn[dn_key(dn)] then return true end
        return account ~= nil and set.uid[account:lower()] == true
    end

    local function account_attrs(limit_attr, extra)
        local attrs = {}
        for _, a in ipairs(s.sender_attrs) do attrs[#attrs + 1] = a end
        attrs[#attrs + 1] = limit_attr
        attrs[#attrs + 1] = account_attr
        if lock_attr then attrs[#attrs + 1] = lock_attr end
        for _, a in ipairs(extra or {}) do attrs[#attrs + 1] = a end
        -- each once: the list is part of the search's cache key
        local seen, list = {}, {}
        for _, a in ipairs(attrs) do
            if not seen[a:lower()] then
                seen[a:lower()] = true
                list[#list + 1] = a
            end
        end
        return list
    end
    local USER_ATTRS = account_attrs(s.user_limit_attr)
    local FUNCTION_ATTRS = account_attrs(s.function_limit_attr, { s.networks_attr, tenants_attr })

    -- addresses (a list, directory order, without duplicates) and senders (a
    -- set of the same) from every sender attribute.
    -- Numeric loops and no `or {}`: ipairs over a fresh empty table made
    -- a table per attribute, and nested ipairs stopped the JIT's traces.
    local SENDER_ATTRS = s.sender_attrs
    local function addresses_of(entry)
        local list, set = {}, {}
        local attrs = entry.attrs
        for i = 1, #SENDER_ATTRS do
            local values = attrs[SENDER_ATTRS[i]]
            for j = 1, values and #values or 0 do
                local n = M.normalize_address(values[j])
                if n ~= nil and not set[n] then
                    set[n] = true
                    list[#list + 1] = n
                end
            end
        end
        return list, set
    end

    -- A limit: the attribute as a count, or as a key of its tier table.
    local function limit_of(entry, attr, tiers)
        local v = entry.attrs[attr]
        v = v and v[1]
        if v == nil then return nil end
        if tiers then return tiers[v:lower()] end
        local n = tonumber(v)
        if n ~= nil and n >= 0 and n == math.floor(n) then return n end
        return nil
    end

    -- The one entry filter finds for a login under the login rule
    -- (directory { login }): the answer list, or false, or nil, token.
    -- as_given: the login; without_realm: alice@example.org as alice;
    -- both: as given, and when that finds nothing, without the realm.  A
    -- spelling that fails or finds several stops.
    local rule = s.login or "as_given"
    local without_realm = address.without_realm
    local function find(filter, login, attrs)
        local r, err
        if rule == "without_realm" then
            r, err = search(filter, without_realm(login) or login, attrs)
        else
            r, err = search(filter, login, attrs)
            if rule == "both" and r ~= nil and #r == 0 then
                local bare = without_realm(login)
                if bare then r, err = search(filter, bare, attrs) end
            end
        end
        if r == nil then return nil, err end
        if #r == 0 then return false end
        if #r > 1 then return nil, "ambiguous" end
        return r
    end

    local function canonical(e, login)
        local v = e.attrs[account_attr]
        local name = (v and v[1] or login):lower()
        return name -- not a tail call of lower (action.lua's make says why)
    end

    -- locked = the lock attribute, or membership of the lock group.
    local function with_lock(acc)
        if acc.locked or not lock_group then return acc end
        local m, err = is_member(lock_group, acc.dn, acc.account)
        if m == nil then return nil, err end
        if not m then return acc end
        local copy = {}
        for k, v in pairs(acc) do copy[k] = v end
        copy.locked = true
        return copy
    end

    -- PO3, PO4, PO7: the user with login name login.
    --   { uid (the login as given), account (canonical, account_attr), dn,
    --     locked, addresses = {...}, senders = {[address] = true},
    --     limit = recipients per 24 h (the directory's or default_limit) }
    -- false when no such user.
    function V.user(login)
        want_string(login, "directory.user: login", 2)
        local r, err = find(s.user_filter, login, USER_ATTRS)
        if not r then return r, err end
        local u = derived_of(r, slot)
        if u == nil or u.uid ~= login then
            local e = r[1]
            local addresses, senders = addresses_of(e)
            u = derive(r, slot, {
                uid = login,
                account = canonical(e, login),
                dn = e.dn,
                locked = lock_attr ~= nil and e.attrs[lock_attr] ~= nil,
                addresses = addresses,
                senders = senders,
                limit = limit_of(e, s.user_limit_attr, user_tiers) or s.default_limit,
            })
        end
        if lock_group then return with_lock(u) end
        return u
    end

    -- PO4, AO4: may the account (from user() or function_account()) send as
    -- address?  Compares normal forms.
    function V.may_send_as(account, addr)
        return M.may_send_as(account, addr)
    end

    -- PO6, MO5, AO7: does anything in the directory receive mail at address?
    -- false for a string that is no address.
    function V.mailbox_exists(addr)
        want_string(addr, "directory.mailbox_exists: address", 2)
        local n = M.normalize_address(addr)
        if n == nil then return false end
        return exists(s.address_filter, n)
    end

    -- PO6, MO5: is domain one of the institution's own mail domains?
    function V.is_local_domain(domain)
        want_string(domain, "directory.is_local_domain: domain", 2)
        local d = domain_of(domain)
        if not d then return false end
        return exists(s.domain_filter, d)
    end

    -- MO6: does address accept only authenticated senders (distribution
    -- lists)?  protected_filter matches it, or its entry is a member of
    -- protected_group.
    local PROTECTED_ATTRS = { account_attr }
    function V.requires_authenticated_sender(addr)
        want_string(addr, "directory.requires_authenticated_sender: address", 2)
        local n = M.normalize_address(addr)
        if n == nil then return false end
        if protected_filter then
            local yes, err = exists(protected_filter, n)
            if yes ~= false then return yes, err end
        end
        if not protected_group then return false end
        local r, err = search(s.address_filter, n, PROTECTED_ATTRS)
        if r == nil then return nil, err end
        for _, e in ipairs(r) do
            local m, merr = is_member(protected_group, e.dn, canonical(e, ""))
            if m ~= false then return m, merr end
        end
        return false
    end

    -- AO3, AO4, AO5, AO8: the appout function account with login name login.
    --   { uid, account, dn, locked, addresses, senders, limit = agreed send
    --     limit or nil, networks = {"10.0.0.0/8", ...} (empty: the campus
    --     default applies), tenants = {[tenant] = true} (from tenants_attr;
    --     ask enabled_for, which knows tenant_group too) }
    -- false when no such account (function_filter finds nothing, or what it
    -- finds is not in function_group).
    function V.function_account(login)
        want_string(login, "directory.function_account: login", 2)
        local r, err = find(s.function_filter, login, FUNCTION_ATTRS)
        if not r then return r, err end
        local e = r[1]
        local acc = canonical(e, login)
        if function_group then
            local m, merr = is_member(function_group, e.dn, acc)
            if not m then return m, merr end
        end
        local addresses, senders = addresses_of(e)
        local networks, tenants = {}, {}
        for _, v in ipairs(e.attrs[s.networks_attr] or {}) do networks[#networks + 1] = v end
        if tenants_attr then
            for _, v in ipairs(e.attrs[tenants_attr] or {}) do tenants[v:lower()] = true end
        end
        return with_lock {
            uid = login,
            account = acc,
            dn = e.dn,
            locked = lock_attr ~= nil and e.attrs[lock_attr] ~= nil,
            addresses = addresses,
            senders = senders,
            limit = limit_of(e, s.function_limit_attr, function_tiers),
            networks = networks,
            tenants = tenants,
        }
    end

    -- AO3: is the function account enabled for tenant?  tenants_attr names
    -- it, or the account is a member of tenant_group with %t = tenant.
    -- true, false, or nil, token.
    function V.enabled_for(acc, tenant)
        if type(acc) ~= "table" or type(acc.tenants) ~= "table" then
            error("directory.enabled_for: account must come from directory.function_account", 2)
        end
        want_string(tenant, "directory.enabled_for: tenant", 2)
        tenant = tenant:lower()
        if acc.tenants[tenant] then return true end
        if not tenant_group then return false end
        local dn = tenant_group:gsub("%%t", (tenant:gsub("[,=+<>#;\\\"]", "\\%0"):gsub("%%", "%%%%")))
        return is_member(dn, acc.dn, acc.account)
    end

    -- AO8 (appout stage 2, which has no SASL login, only the envelope
    -- sender): the function account that may send as address, as
    -- function_account() gives it; false when no function account has the
    -- address, nil, token when the directory cannot answer ("ambiguous"
    -- when several have it).  One search finds the login name:
    -- function_filter with its value made a wildcard
    -- ("(&(objectClass=X)(uid=%s))" -> "(&(objectClass=X)(uid=*))", every
    -- function account) and address_filter for the address; then
    -- function_account(login) (both answers cached).
    local login_attr = s.function_filter:match("%(([%w%.;%-]+)=%%[s1]%)") or account_attr
    local any_function = s.function_filter:gsub("%%(.)", function(c)
        if c == "s" or c:match("%d") then return "*" end
        return "%" .. c
    end)
    local by_sender_filter = "(&" .. any_function .. s.address_filter .. ")"
    local LOGIN_ATTRS = { login_attr }
    function V.function_account_by_sender(addr)
        want_string(addr, "directory.function_account_by_sender: address", 2)
        local n = M.normalize_address(addr)
        if n == nil then return false end
        local r, err = search(by_sender_filter, n, LOGIN_ATTRS)
        if r == nil then return nil, err end
        if #r == 0 then return false end
        if #r > 1 then return nil, "ambiguous" end
        local login = r[1].attrs[login_attr] and r[1].attrs[login_attr][1]
        if login == nil or login == "" then return nil, "invalid" end
        return V.function_account(login)
    end

    V.normalize_address = M.normalize_address
    V.new = M.new
    return V
end

-- PO4, AO4: may the account (from user() or function_account()) send as
-- address?  Compares normal forms.
function M.may_send_as(account, addr)
    if type(account) ~= "table" or type(account.senders) ~= "table" then
        error("directory.may_send_as: account must come from directory.user or directory.function_account", 2)
    end
    local n = M.normalize_address(addr)
    return n ~= nil and account.senders[n] == true
end

-- The vocabulary of this generation's directory { } (defaults applied).
local default = M.new(core.config().directory)
for k, v in pairs(default) do
    if M[k] == nil then M[k] = v end
end

return M
