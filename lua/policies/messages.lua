-- messages: the message checks at end of message, for a milter listener
-- (docs/milter.md, "The message checks: PO8, G3, G4").
--
--   service messages { policy = messages.lua  checks = [PO8=log-only] }
--   checks = [G4=tag]: a shortener link adds X-Outpost-G4: url-shortener HOST
--   and the message goes on
--
-- PO8  the From a recipient sees is an address the authenticated user may use
-- G3   the header follows RFC 5322 (one From, one Date, a Message-ID, ...)
-- G4   no links to URL shorteners in the text parts
local A = require "outpost.action"
local P = require "outpost.pipeline"
local lists = require "outpost.lists"
local directory = require "directory"
local msgchecks = require "msgchecks"

-- read when the generation loads: a SIGHUP picks up edits
local shorteners = lists.domains("url_shorteners")

local policy = P.service "messages" {
    P.eom_check("PO8", "header From is one of the user's addresses", function(tx)
        if not tx.sasl_user then return nil end -- not submitted by a user: nothing to compare
        local user, err = directory.user(tx.sasl_user)
        if err then return A.defer("4.3.0", "directory unavailable, try again later") end
        if not user then return A.reject("5.7.1", "unknown user %s", tx.sasl_user) end
        local bad, why = msgchecks.po8(tx.headers, user.senders)
        if bad then
            return A.reject("5.7.1", "header From %s is not yours (%s)", bad, why)
        end
    end),
    P.eom_check("G3", "the message follows RFC 5322", function(tx)
        local v = msgchecks.g3(tx.headers)
        if v then return A.reject("5.6.0", "message does not follow RFC 5322: %s", v.reason) end
    end),
    P.eom_check("G4", "no links to URL shorteners", function(tx)
        local hit = msgchecks.g4(tx.headers, tx.body, shorteners)
        if hit then
            return A.reject("5.7.1", "links to URL shorteners (%s) are not accepted: link to the real address",
                hit.host):tag("url-shortener " .. hit.host)
        end
    end),
}

-- G4 reads the body: the first 1 MiB is what it scans
policy.keep_body = 1048576
return policy
