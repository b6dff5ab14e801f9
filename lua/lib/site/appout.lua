-- appout: what the two appout policies share (docs/services/appout.md).
--
--   lua/policies/appout_stage1.lua  AO1-AO5, at submission (TLS + AUTH)
--   lua/policies/appout_stage2.lua  AO7, AO8, the second hop after acceptance
--
-- Two policy files rather than one: each service validates the check ids of
-- its configuration against its own policy, so `checks = [AO7=log-only]` on
-- appout-stage1 is refused as the typo it is.  What both need lives here:
-- the function account of a request, looked up once per request, and the
-- answer when the directory cannot give it.
local A = require "outpost.action"
local directory = require "site.directory"
local address = require "site.address"
local outpost = require "outpost"

local M = {}

-- Said to the application (stage 1) or kept in the queue file and, after 5
-- days, in the bounce to the application's sender (stage 2): temporary, so
-- the mail is retried.
M.DIRECTORY_DOWN = "the account directory cannot be reached (%s); the mail is retried later"

-- A dependency failed: 4xx, never 5xx (the mail is retried, not bounced).
function M.directory_down(err)
    outpost.log("warning", "appout: directory lookup failed: " .. tostring(err))
    return A.defer("4.3.0", M.DIRECTORY_DOWN, tostring(err))
end

-- Stage 1: the function account the application authenticated as, once per
-- request (AO3, AO4 and AO5 all read it; a check that is off does not stop
-- the others from finding it).  Returns the account, false when there is
-- none, or nil, token when the directory cannot answer.
function M.account(tx)
    local cached = rawget(tx, "_appout_account")
    if cached ~= nil then return cached end
    local acc, err = directory.function_account(tx.sasl_user)
    if acc == nil then return nil, err end
    rawset(tx, "_appout_account", acc)
    return acc
end

-- Stage 2: the function account that owns the envelope sender (the second
-- hop has no SASL login; stage 1's AO4 made sure the sender is the
-- account's).  false for the null sender and for a sender no function
-- account owns; nil, token when the directory cannot answer.
function M.sender_account(tx)
    local cached = rawget(tx, "_appout_sender_account")
    if cached ~= nil then return cached end
    local sender = address.normalize(tx.sender)
    local acc, err = false, nil
    if sender and sender ~= "" then
        acc, err = directory.function_account_by_sender(sender)
        if acc == nil then return nil, err end
    end
    rawset(tx, "_appout_sender_account", acc)
    return acc
end

-- "<>" for the null sender, else the address as given, for reply texts.
function M.shown(addr)
    if addr == nil or addr == "" or addr == "<>" then return "<> (the null sender)" end
    return "<" .. addr .. ">"
end

return M
