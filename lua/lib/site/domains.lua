-- site.domains: the institution's own mail domains, and what DNS says of a
-- recipient's (PO5, PO6, MO4, MO5, MO6, AO7).
--
--   local domains = require "site.domains"
--   domains.LOCAL["example.org"]        -- conf/lists/local_domains.txt, read at load
--   domains.is_local(domain)            -- the list, then the directory
--   domains.is_permanent(err)           -- a dns.mail_domain failure that is the domain's
--   domains.has_mailbox(addr [, seps])  -- the directory receives mail at addr
local lists = require "outpost.lists"
local address = require "site.address"
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

-- PO6, AO7: does anything in the directory receive mail at addr, or, when
-- it has a tag, at addr without it (bob+news@ is delivered to bob@;
-- separators as address.untagged)?  true / false, or nil, token.
function M.has_mailbox(addr, separators)
    local exists, err = directory.mailbox_exists(addr)
    if exists ~= false then return exists, err end
    local plain = address.untagged(addr, separators)
    if not plain then return false end
    return directory.mailbox_exists(plain)
end

return M
