-- appout stage 2: the second hop.  Stage 1 (appout_stage1.lua) accepted the
-- mail from the application and relays it to a second smtpd, which asks
-- this service per recipient: the client is stage 1's MTA, there is no SASL
-- login, the envelope sender is the application's.
-- REQUIREMENTS.md section 4, AO7 and AO8 per recipient (policy requests),
-- and AO6, the spam and virus scanners, at end of message: the same
-- service is stage 2's milter too (docs/services/appout.md, "AO6").
--
-- Who reads the answers: stage 1's queue.  Everything permanent is 5xx, so
-- stage 1 bounces the recipient to the application's sender; everything
-- temporary (a limit, our DNS or directory failing) is 4xx, so the mail
-- stays queued in stage 1 and is retried, for at most maximal_queue_lifetime
-- (5 days) after which stage 1 bounces it.
local A = require "outpost.action"
local P = require "outpost.pipeline"
local dns = require "outpost.dns"
local outpost = require "outpost"
local address = require "site.address"
local domains = require "site.domains"
local appout = require "site.appout"
local scanning = require "site.scanning"

-- The replies, one place to adapt them: { RFC 3463 status, text }; 5.X.Y
-- rejects, 4.X.Y defers.  A 5xx text reaches the application's sender in
-- stage 1's bounce; a 4xx text is shown in `mailq` and in the delay notice.
local say = A.replies {
    bad_rcpt = { "5.1.3", "recipient address %s is not valid" },
    no_domain = { "5.1.2", "recipient domain %s does not exist (no MX, A or AAAA record); correct or remove the address" },
    null_mx = { "5.1.10", "recipient domain %s accepts no mail (null MX); remove the address" },
    no_mailbox = { "5.1.1", "recipient %s does not exist; correct or remove the address" },
    dns_down = { "4.4.3", "recipient domain %s cannot be checked now (DNS: %s); the mail stays queued and is retried" },
    dir_down = { "4.4.3", "recipient %s cannot be checked now (directory: %s); the mail stays queued and is retried" },
    limit = { "4.7.1", "sender %s has reached its agreed send limit of %d recipients per %d h; the mail stays queued and is sent from %s UTC, when the window frees a slot" },
    -- max 0: an operator paused the sender; its mail waits in stage 1
    paused = { "4.7.1", "sender %s may send no mail now (send limit %d per %d h); the mail stays queued until the limit is raised" },
    counters_down = { "4.3.0", "the send limit of %s cannot be counted now (%s); the mail stays queued and is retried" },
}

-- The limit AO8 counts against (limit appout_send { } in the configuration):
-- recipients per sender address in a sliding window.  Its max applies to a
-- sender without an agreed limit; the agreed one comes from the directory
-- (limit_attr of the function account), capped at its max_override.
local LIMIT = "appout_send"

-- RCPT is asked once per recipient; DATA and END-OF-MESSAGE settle AO8's count.
local EACH_RCPT = { stages = "not DATA END-OF-MESSAGE", per_recipient = true }
local COUNTED = { stages = "not DATA END-OF-MESSAGE", counts = true }
local RCPT_FORM = { strip_tag = false, keep_case = true }

-- AO6's levels (site/scanning.lua): rspamd's action or score at which a
-- message is refused (5xx, bounced by stage 1) or tagged (X-Outpost-AO6),
-- per tenant over the default.  A virus is always refused.
local SCAN_THRESHOLDS = {
    default = { reject_action = "reject", tag_action = "add header" },
    tenants = {
        -- tu = { reject_score = 12 },
    },
}

-- link = true: the milter's end of message finds what the policy requests
-- of the same transaction reserved (AO8) and commits it when AO6 lets the
-- message through, or gives it back when AO6 refuses it (docs/milter.md).
local policy = P.service("appout-stage2", { link = true }) {
    -- Local domains (site.domains: the list, then the directory): a
    -- mailbox, alias or list at the address; other domains: DNS says where
    -- their mail goes.
    P.check("AO7", "the recipient is deliverable", EACH_RCPT, function(tx)
        local rcpt = address.parse(tx.recipient, RCPT_FORM)
        if rcpt == nil or rcpt.null then return say.bad_rcpt(appout.shown(tx.recipient)) end
        local domain = rcpt.domain
        local mine, err = domains.is_local(domain)
        if mine == nil then return say.dir_down(appout.shown(tx.recipient), err) end
        if mine then
            local exists, derr = domains.has_mailbox(tx.recipient) -- bob+news@ is delivered to bob@
            if exists == nil then return say.dir_down(appout.shown(tx.recipient), derr) end
            if not exists then return say.no_mailbox(appout.shown(tx.recipient)) end
            return nil
        end
        local where, derr = dns.mail_domain(domain)
        if where then return nil end
        if derr == "nullmx" then return say.null_mx(domain) end
        if domains.is_permanent(derr) then return say.no_domain(domain) end
        return say.dns_down(domain, derr) -- timeout, servfail, ...
    end),

    -- Counted per recipient, keyed by the sender in normal form (address.lua:
    -- case, IDN and +tag do not make a new counter).  Reserved at RCPT,
    -- committed at DATA / END-OF-MESSAGE with what Postfix accepted
    -- (docs/limits.md, counts = true); a recipient deferred here is asked
    -- again on stage 1's retry, in a new transaction.  The null sender
    -- (stage 1's own bounces to the application) is not counted.
    P.check("AO8", "the sender address is under its agreed send limit", COUNTED, function(tx)
        local sender = address.normalize(tx.sender)
        if not sender or sender == "" then return nil end
        local acc, err = appout.sender_account(tx)
        if acc == nil then return appout.directory_down(err) end
        if acc == false then
            outpost.log("notice", "AO8: no function account sends as " .. sender .. "; the default limit applies")
        end
        local r, lerr = P.count(tx, LIMIT, sender, { max = acc and acc.limit or nil })
        if r == nil then return say.counters_down(sender, lerr) end
        if r.ok then return nil end
        local hours = math.floor(r.window / 3600 + 0.5)
        if r.next_free == nil then return say.paused(sender, r.max, hours) end
        return say.limit(sender, r.max, hours, os.date("!%Y-%m-%d %H:%M", r.next_free))
    end),

    -- The whole message (headers and body, up to the scanners' max_size)
    -- through clamd and rspamd; virus or spam 5xx, a scanner down 4xx.
    P.eom_check("AO6", "no virus and no spam (clamd, rspamd)", scanning.ao6(SCAN_THRESHOLDS)),
}
-- The milter keeps the body for AO6 (0 when no scanner is configured).
policy.keep_body = scanning.max_bytes() > 0 and scanning.keep_body() or 0
return policy
