-- appout: what the two appout policies share (docs/services/appout.md).
--
--   lua/policies/appout_stage1.lua  AO1-AO5, at submission (TLS + AUTH)
--   lua/policies/appout_stage2.lua  AO7, AO8, the second hop after acceptance
--
-- Two policy files rather than one: each service validates the check ids of
-- its configuration against its own policy, so `checks = [AO7=log-only]` on
-- appout-stage1 is refused as the typo it is.  What both need lives here:
-- the function account of a request, looked up once per request, the
-- networks AO5 allows, and the answer when the directory cannot give it.
local A = require "outpost.action"
local P = require "outpost.pipeline"
local netset = require "outpost.netset"
local directory = require "site.directory"
local address = require "site.address"
local outpost = require "outpost"

local M = {}

-- Said to the application (stage 1) or kept in the queue file and, after 5
-- days, in the bounce to the application's sender (stage 2): temporary, so
-- the mail is retried.
local say = A.replies {
    directory_down = { "4.3.0", "the account directory cannot be reached (%s); the mail is retried later" },
}

-- A dependency failed: 4xx, never 5xx (the mail is retried, not bounced).
function M.directory_down(err)
    outpost.log("warning", "appout: directory lookup failed: " .. tostring(err))
    return say.directory_down(tostring(err))
end

-- Stage 1: the function account the application authenticated as, once per
-- request (AO3, AO4 and AO5 all read it; a check that is off does not stop
-- the others from finding it).  Returns the account, false when there is
-- none, or nil, token when the directory cannot answer.
M.account = P.derive(function(tx) return directory.function_account(tx.sasl_user) end)

-- Stage 2: the function account that owns the envelope sender (the second
-- hop has no SASL login; stage 1's AO4 made sure the sender is the
-- account's).  false for the null sender and for a sender no function
-- account owns; nil, token when the directory cannot answer.
M.sender_account = P.derive(function(tx)
    local sender = address.normalize(tx.sender)
    if not sender or sender == "" then return false end
    return directory.function_account_by_sender(sender)
end)

-- AO5: the networks the account may send from, as a netset, and how to
-- name them in a reply: its own (from the directory), or default (the
-- campus network) when it has none.  nil, why for a network that cannot be
-- read.  A set is built once per distinct list of networks and kept for
-- this generation (bounded: a reload or 1000 distinct lists start afresh).
local account_sets, n_sets = {}, 0
function M.networks(acc, default)
    if #acc.networks == 0 then return default, "the campus network" end
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

-- "<>" for the null sender, else the address as given, for reply texts.
function M.shown(addr)
    if addr == nil or addr == "" or addr == "<>" then return "<> (the null sender)" end
    return "<" .. addr .. ">"
end

return M
