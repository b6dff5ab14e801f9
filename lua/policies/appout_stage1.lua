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
local appout = require "site.appout"
local directory = require "site.directory"
local outpost = require "outpost"

-- The replies, one place to adapt them: { RFC 3463 status, text }; 5.X.Y
-- rejects, 4.X.Y defers.
local say = A.replies {
    no_tls = { "5.7.10", "appout accepts mail only over an encrypted connection: use SMTPS on port 465 or STARTTLS on port 587" },
    no_auth = { "5.7.0", "appout needs authentication with the application's function account and its password (SMTP AUTH)" },
    no_account = { "5.7.1", "%s is not a function account for appout; request one (with its sender address and send limit) at the service desk" },
    not_enabled = { "5.7.1", "function account %s is not enabled for appout-%s; ask the service desk to enable it for this server" },
    -- our configuration is wrong, not the application: retry later
    no_tenant = { "4.3.5", "appout listener without a tenant: configuration error, try again later" },
    locked = { "5.7.1", "function account %s is locked; contact the service desk" },
    not_sender = { "5.7.1", "function account %s may not send as %s; use one of its sender addresses: %s" },
    no_sender = { "5.7.1", "function account %s has no sender address; ask the service desk to add one" },
    -- a broken directory entry is our error: retry, and tell the log
    bad_networks = { "4.3.5", "the allowed networks of function account %s cannot be read; try again later" },
    outside = { "5.7.1", "client %s is not in the networks allowed for function account %s (%s); send from there or ask the service desk to add this address" },
}

-- The default of AO5: an account without networks of its own may send from
-- the campus network (conf/lists/campus_networks.txt, reloaded with SIGHUP).
local CAMPUS = lists.networks("campus_networks")

-- The account for AO3-AO5: each needs it, whichever of the others are off.
-- Returns the account, or nil and the answer to give instead; nil alone
-- without a login (AO2's case).
local function account(tx)
    if not tx.sasl_user then return nil end
    local acc, err = appout.account(tx)
    if acc == nil then return nil, appout.directory_down(err) end
    if acc == false then return nil, say.no_account(tx.sasl_user) end
    return acc
end

return P.service "appout-stage1" {
    P.check("AO1", "the SMTP session is TLS-encrypted", function(tx)
        if not tx.tls then return say.no_tls() end
    end),

    P.check("AO2", "the application authenticated (SASL)", function(tx)
        if not tx.sasl_user then return say.no_auth() end
    end),

    -- Exists, is enabled for this tenant's appout (the listener names the
    -- tenant), and is not locked (usually: the password leaked).
    P.check("AO3", "function account exists, is enabled for this tenant and not locked", function(tx)
        local acc, answer = account(tx)
        if not acc then return answer end
        if tx.tenant == "" then return say.no_tenant() end
        local enabled, err = directory.enabled_for(acc, tx.tenant)
        if enabled == nil then return appout.directory_down(err) end
        if not enabled then return say.not_enabled(acc.uid, tx.tenant) end
        if acc.locked then return say.locked(acc.uid) end
    end),

    -- G1: never send with someone else's address.  The null sender is no
    -- address of the account either.
    P.check("AO4", "the account may use the envelope sender", function(tx)
        local acc, answer = account(tx)
        if not acc then return answer end
        if directory.may_send_as(acc, tx.sender) then return nil end
        if #acc.addresses == 0 then return say.no_sender(acc.uid) end
        return say.not_sender(acc.uid, appout.shown(tx.sender), table.concat(acc.addresses, ", "))
    end),

    -- The account's own networks (very high limits come with them), else
    -- the campus network.  Own networks replace the default, they do not add.
    P.check("AO5", "the client IP is inside the account's allowed networks", function(tx)
        local acc, answer = account(tx)
        if not acc then return answer end
        local set, what = appout.networks(acc, CAMPUS)
        if set == nil then
            outpost.log("error", string.format("AO5: function account %s: bad network: %s",
                acc.uid, tostring(what)))
            return say.bad_networks(acc.uid)
        end
        if tx.client == "" or not set:match(tx.client) then
            return say.outside(tx.client ~= "" and tx.client or "(unknown)", acc.uid, what)
        end
    end),
}
