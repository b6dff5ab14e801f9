-- appout stage 1: applications submit with TLS and AUTH (SMTPS 465 or
-- STARTTLS 587), one Postfix per tenant (appout-ba, -hm, -lm, -tu), each
-- asking this service through its own listener, which names the tenant.
-- REQUIREMENTS.md section 4, AO1-AO5; docs/services/appout.md.
--
-- Who reads the answers: the application (or its operator, from its log).
-- A wrong setup is 5xx with a text that says what to change; our own
-- directory failing is 4xx, so the application retries.
local A = require "outpost.action"
local P = require "outpost.pipeline"
local lists = require "outpost.lists"
local netset = require "outpost.netset"
local appout = require "site.appout"
local directory = require "site.directory"
local outpost = require "outpost"

-- Reply texts, one place to adapt them (RFC 3463 codes in the checks).
local T = {
    no_tls = "appout accepts mail only over an encrypted connection: use SMTPS on port 465 or STARTTLS on port 587",
    no_auth = "appout needs authentication with the application's function account and its password (SMTP AUTH)",
    no_account = "%s is not a function account for appout; request one (with its sender address and send limit) at the service desk",
    not_enabled = "function account %s is not enabled for appout-%s; ask the service desk to enable it for this server",
    no_tenant = "appout listener without a tenant: configuration error, try again later",
    locked = "function account %s is locked; contact the service desk",
    not_sender = "function account %s may not send as %s; use one of its sender addresses: %s",
    no_sender = "function account %s has no sender address; ask the service desk to add one",
    bad_networks = "the allowed networks of function account %s cannot be read; try again later",
    outside = "client %s is not in the networks allowed for function account %s (%s); send from there or ask the service desk to add this address",
}

-- The default of AO5: an account without networks of its own may send from
-- the campus network (conf/lists/campus_networks.txt, reloaded with SIGHUP).
local CAMPUS = lists.networks("campus_networks")

-- Per-account networks come from the directory at request time; a set is
-- built once per distinct list of networks and kept for this generation
-- (bounded: a reload or 1000 distinct lists start it afresh).
local account_sets, n_sets = {}, 0
local function networks_of(acc)
    if #acc.networks == 0 then return CAMPUS, "the campus network" end
    local key = table.concat(acc.networks, " ")
    local set = account_sets[key]
    if set == nil then
        set = netset.new()
        for _, cidr in ipairs(acc.networks) do
            local ok, err = pcall(set.add, set, cidr)
            if not ok then return nil, err end
        end
        if n_sets >= 1000 then account_sets, n_sets = {}, 0 end
        account_sets[key], n_sets = set, n_sets + 1
    end
    return set, key
end

-- The account for AO3-AO5: each needs it, whichever of the others are off.
-- Returns the account, or nil and the answer to give instead.
local function account(tx)
    local acc, err = appout.account(tx)
    if acc == nil then return nil, appout.directory_down(err) end
    if acc == false then return nil, A.reject("5.7.1", T.no_account, tx.sasl_user) end
    return acc
end

return P.service "appout-stage1" {
    P.check("AO1", "the SMTP session is TLS-encrypted", function(tx)
        if not tx.tls then return A.reject("5.7.10", T.no_tls) end
    end),

    P.check("AO2", "the application authenticated (SASL)", function(tx)
        if not tx.sasl_user then return A.reject("5.7.0", T.no_auth) end
    end),

    -- Exists, is enabled for this tenant's appout (the listener names the
    -- tenant), and is not locked (usually: the password leaked).
    P.check("AO3", "function account exists, is enabled for this tenant and not locked", function(tx)
        if not tx.sasl_user then return nil end -- AO2's case
        local acc, answer = account(tx)
        if not acc then return answer end
        if tx.tenant == "" then
            -- our configuration is wrong, not the application: retry later
            return A.defer("4.3.5", T.no_tenant)
        end
        if not acc.tenants[tx.tenant] then
            return A.reject("5.7.1", T.not_enabled, acc.uid, tx.tenant)
        end
        if acc.locked then return A.reject("5.7.1", T.locked, acc.uid) end
    end),

    -- G1: never send with someone else's address.  The null sender is no
    -- address of the account either.
    P.check("AO4", "the account may use the envelope sender", function(tx)
        if not tx.sasl_user then return nil end
        local acc, answer = account(tx)
        if not acc then return answer end
        if directory.may_send_as(acc, tx.sender) then return nil end
        if #acc.addresses == 0 then return A.reject("5.7.1", T.no_sender, acc.uid) end
        return A.reject("5.7.1", T.not_sender, acc.uid, appout.shown(tx.sender),
            table.concat(acc.addresses, ", "))
    end),

    -- The account's own networks (very high limits come with them), else
    -- the campus network.  Own networks replace the default, they do not add.
    P.check("AO5", "the client IP is inside the account's allowed networks", function(tx)
        if not tx.sasl_user then return nil end
        local acc, answer = account(tx)
        if not acc then return answer end
        local set, what = networks_of(acc)
        if set == nil then
            -- a broken directory entry is our error: retry, and tell the log
            outpost.log("error", string.format("AO5: function account %s: bad network: %s",
                acc.uid, tostring(what)))
            return A.defer("4.3.5", T.bad_networks, acc.uid)
        end
        if tx.client == "" or not set:match(tx.client) then
            return A.reject("5.7.1", T.outside, tx.client ~= "" and tx.client or "(unknown)", acc.uid, what)
        end
    end),
}
