-- site.domains: the institution's own mail domains, and what DNS says of a
-- recipient's (PO5, PO6, MO4, MO5, MO6, AO7).
--
--   local domains = require "site.domains"
--   domains.LOCAL["example.org"]        -- conf/lists/local_domains.txt, read at load
--   domains.is_local(domain)            -- the list, then the directory
--   domains.is_permanent(err)           -- a dns.mail_domain failure that is the domain's
local lists = require "outpost.lists"
local directory = require "site.directory"

local M = {}

-- The list answers at once; the directory is asked for domains it does not
-- name.  Read when the generation loads, so a reload picks up edits.
M.LOCAL = lists.domains("local_domains")

-- Is domain one of the institution's own?  true / false, or nil, token
-- when the directory cannot answer.
function M.is_local(domain)
    if M.LOCAL[domain] then return true end
    return directory.is_local_domain(domain)
end

-- dns.mail_domain's failures that the domain's owner (or the sender's
-- spelling) caused: a policy answers 5xx.  The others (timeout, servfail,
-- refused, formerr, cancelled) are ours: 4xx, the client retries.
local PERMANENT = { nullmx = true, nxdomain = true, nodata = true, badname = true }
function M.is_permanent(err)
    return PERMANENT[err] == true
end

return M
