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
local P = require "outpost.pipeline"
local lists = require "outpost.lists"
local message_checks = require "site.message_checks"

-- read when the generation loads: a SIGHUP picks up edits
local shorteners = lists.domains("url_shorteners")

local policy = P.service "messages" {
    P.eom_check("PO8", "header From is one of the user's addresses", message_checks.po8),
    P.eom_check("G3", "the message follows RFC 5322", message_checks.g3),
    P.eom_check("G4", "no links to URL shorteners", message_checks.g4(shorteners)),
}

-- G4 reads the body: the first 1 MiB is what it scans
policy.keep_body = message_checks.BODY_BYTES
return policy
