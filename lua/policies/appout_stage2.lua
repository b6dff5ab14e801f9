-- appout stage 2: the second hop.  Stage 1 (appout_stage1.lua) accepted the
-- mail from the application and relays it to a second smtpd, which asks
-- this service per recipient: the client is stage 1's MTA, there is no SASL
-- login, the envelope sender is the application's.
-- REQUIREMENTS.md section 4, AO7 and AO8 (AO6, the scanner, needs the
-- message: milter work); docs/services/appout.md.
--
-- Who reads the answers: stage 1's queue.  Everything permanent is 5xx, so
-- stage 1 bounces the recipient to the application's sender; everything
-- temporary (a limit, our DNS or directory failing) is 4xx, so the mail
-- stays queued in stage 1 and is retried, for at most maximal_queue_lifetime
-- (5 days) after which stage 1 bounces it.
local A = require "outpost.action"
local P = require "outpost.pipeline"
local lists = require "outpost.lists"
local dns = require "outpost.dns"
local limit = require "outpost.limit"
local outpost = require "outpost"
local address = require "site.address"
local directory = require "site.directory"
local appout = require "site.appout"

-- Reply texts, one place to adapt them (RFC 3463 codes in the checks).  A
-- 5xx text reaches the application's sender in stage 1's bounce; a 4xx text
-- is shown in `mailq` and in the delay notice.
local T = {
    bad_rcpt = "recipient address %s is not valid",
    no_domain = "recipient domain %s does not exist (no MX, A or AAAA record); correct or remove the address",
    null_mx = "recipient domain %s accepts no mail (null MX); remove the address",
    no_mailbox = "recipient %s does not exist; correct or remove the address",
    dns_down = "recipient domain %s cannot be checked now (DNS: %s); the mail stays queued and is retried",
    dir_down = "recipient %s cannot be checked now (directory: %s); the mail stays queued and is retried",
    limit = "sender %s has reached its agreed send limit of %d recipients per %d h; the mail stays queued and is sent from %s UTC, when the window frees a slot",
    paused = "sender %s may send no mail now (send limit %d per %d h); the mail stays queued until the limit is raised",
    counters_down = "the send limit of %s cannot be counted now (%s); the mail stays queued and is retried",
}

-- The limit AO8 counts against (limit appout_send { } in the configuration):
-- recipients per sender address in a sliding window.  Its max applies to a
-- sender without an agreed limit; the agreed one comes from the directory
-- (limit_attr of the function account), capped at its max_override.
local LIMIT = "appout_send"

-- The institution's own mail domains: for these the directory, not DNS, knows
-- whether a recipient exists.  The list answers at once; the directory's
-- domain entries are asked too, for domains the list does not name.
local LOCAL_DOMAINS = lists.domains("local_domains")

-- RCPT is asked once per recipient; DATA and END-OF-MESSAGE settle the count.
local function at_data(tx) return tx.stage == "DATA" or tx.stage == "END-OF-MESSAGE" end

local function is_local(domain)
    if LOCAL_DOMAINS[domain] then return true end
    return directory.is_local_domain(domain)
end

return P.service "appout-stage2" {
    -- Local domains: the directory (a mailbox, alias or list at the
    -- address); other domains: DNS says where their mail goes.
    P.check("AO7", "the recipient is deliverable", function(tx)
        if at_data(tx) or tx.recipient == "" then return nil end
        local rcpt = address.parse(tx.recipient, { strip_tag = false, keep_case = true })
        if rcpt == nil or rcpt.null then return A.reject("5.1.3", T.bad_rcpt, appout.shown(tx.recipient)) end
        local domain = rcpt.domain
        local mine, err = is_local(domain)
        if mine == nil then return A.defer("4.4.3", T.dir_down, appout.shown(tx.recipient), err) end
        if mine then
            local exists, derr = directory.mailbox_exists(tx.recipient)
            local plain = address.normalize(tx.recipient) -- bob+news@ is delivered to bob@
            if exists == false and plain and plain ~= directory.normalize_address(tx.recipient) then
                exists, derr = directory.mailbox_exists(plain)
            end
            if exists == nil then return A.defer("4.4.3", T.dir_down, appout.shown(tx.recipient), derr) end
            if not exists then return A.reject("5.1.1", T.no_mailbox, appout.shown(tx.recipient)) end
            return nil
        end
        local where, derr = dns.mail_domain(domain)
        if where then return nil end
        if derr == "nullmx" then return A.reject("5.1.10", T.null_mx, domain) end
        if derr == "nxdomain" or derr == "nodata" or derr == "badname" then
            return A.reject("5.1.2", T.no_domain, domain)
        end
        return A.defer("4.4.3", T.dns_down, domain, derr) -- timeout, servfail, ...
    end),

    -- Counted per recipient, keyed by the sender in normal form (address.lua:
    -- case, IDN and +tag do not make a new counter).  Reserved at RCPT,
    -- committed at DATA / END-OF-MESSAGE with what Postfix accepted
    -- (docs/limits.md); a recipient deferred here is asked again on stage
    -- 1's retry, in a new transaction.  The null sender (stage 1's own
    -- bounces to the application) is not counted.
    P.check("AO8", "the sender address is under its agreed send limit", function(tx)
        local sender = address.normalize(tx.sender)
        if not sender or sender == "" then return nil end
        if at_data(tx) then
            if tx.instance ~= "" then limit.commit(tx.instance, tonumber(tx.attrs.recipient_count)) end
            return nil
        end
        local acc, err = appout.sender_account(tx)
        if acc == nil then return appout.directory_down(err) end
        if acc == false then
            outpost.log("notice", "AO8: no function account sends as " .. sender .. "; the default limit applies")
        end
        local opts = { max = acc and acc.limit or nil }
        local r, lerr
        if tx.instance ~= "" then
            r, lerr = limit.reserve(LIMIT, sender, tx.instance, 1, opts)
        else
            r, lerr = limit.add(LIMIT, sender, 1, opts)
        end
        if r == nil then return A.defer("4.3.0", T.counters_down, sender, lerr) end
        if r.ok then return nil end
        local hours = math.floor(r.window / 3600 + 0.5)
        if r.next_free == nil then
            -- max 0: an operator paused the sender; its mail waits in stage 1
            return A.defer("4.7.1", T.paused, sender, r.max, hours)
        end
        return A.defer("4.7.1", T.limit, sender, r.max, hours, os.date("!%Y-%m-%d %H:%M", r.next_free))
    end),
}
