-- site.message_checks: PO8, G3 and G4 as pipeline end-of-message checks, shared
-- by every policy that runs them (postout.lua, messages.lua), so the
-- replies and the directory lookup are written once:
--
--   P.eom_check("PO8", "...", message_checks.po8)
--   P.eom_check("G3",  "...", message_checks.g3)
--   P.eom_check("G4",  "...", message_checks.g4(shorteners))
--
-- The parsing lives in message/inspect.lua; this file turns its findings into
-- answers (docs/milter.md, "The message checks").
local A = require "outpost.action"
local directory = require "site.directory"
local inspect = require "message.inspect"

local M = {}

local say = A.replies {
    directory_down = { "4.3.0", "directory unavailable, try again later" }, -- PO8
    unknown_user = { "5.7.1", "unknown user %s" },                           -- PO8 (login)
    not_yours = { "5.7.1", "header From %s is not yours (%s)" },            -- PO8 (address, why)
    not_rfc5322 = { "5.6.0", "message does not follow RFC 5322: %s" },      -- G3 (reason)
    truncated = { "5.3.4", "message header too large to check: %s" },         -- all (why)
    shortener = { "5.7.1", "links to URL shorteners (%s) are not accepted: link to the real address" }, -- G4 (host)
}

-- PO8: the header From a recipient sees is one of the user's addresses.
-- Mail not submitted by a user (no {auth_authen}) is not PO8's business.
-- A check called outside the pipeline on a header the milter could not
-- keep whole refuses rather than judge the part it has.
local function truncated(tx)
    local why = rawget(tx, "truncated") or (tx.ctx and tx.ctx.truncated)
    if why then return say.truncated(why) end
end

function M.po8(tx)
    local cut = truncated(tx)
    if cut then return cut end
    if not tx.sasl_user then return nil end
    local user, err = directory.user(tx.sasl_user)
    if err then return say.directory_down() end
    if not user then return say.unknown_user(tx.sasl_user) end
    local bad, why = inspect.po8(tx.headers, user.senders)
    if bad then return say.not_yours(bad, why) end
end

-- G3: exactly one From, one Date, a Message-ID, singletons once, well-formed names.
function M.g3(tx)
    local cut = truncated(tx)
    if cut then return cut end
    local v = inspect.g3(tx.headers)
    if v then return say.not_rfc5322(v.reason) end
end

-- G4: no links to URL shorteners; shorteners is the set the policy read
-- from conf/lists/url_shorteners.txt when its generation loaded.  In tag
-- mode the tag becomes the X-Outpost-G4 header.
function M.g4(shorteners)
    return function(tx)
        local cut = truncated(tx)
        if cut then return cut end
        local hit = inspect.g4(tx.headers, tx.body, shorteners)
        if hit then return say.shortener(hit.host):tag("url-shortener " .. hit.host) end
    end
end

-- What G4 reads of a body: policies set policy.keep_body to it.
M.BODY_BYTES = 1048576

return M
