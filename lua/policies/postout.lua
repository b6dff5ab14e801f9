-- postout: users' mail clients (MUAs) submitting on ports 465 (TLS) and 587
-- (STARTTLS).  Requirements PO1-PO8 of ../shared/spec/REQUIREMENTS.md §2,
-- one check per row, in the seed's order; docs/services/postout.md explains
-- each check, its answer and its mode, and the decisions taken here.
--
-- The seed wants an answer the user can act on at once, in the mail program
-- (a typo in a recipient is refused at SMTP time, not bounced an hour
-- later): a user's error (no TLS, no login, a sender that is not theirs, a
-- recipient or domain that does not exist) is 5xx and says what to change;
-- our own DNS, directory or counters failing is 4xx, so the mail program
-- tries again; the recipient limit is 4xx with the limit and when the next
-- slot frees.
--
-- When the checks run (their stages; a request without protocol_state is
-- RCPT): PO1-PO4 at MAIL and RCPT, PO5-PO7 at RCPT; at DATA and
-- END-OF-MESSAGE PO7 settles the recipients reserved at RCPT
-- (docs/limits.md) and nothing else is checked; CONNECT, EHLO, VRFY, ETRN:
-- DUNNO.  PO8, G3 and G4 read the message: they run at end of message,
-- where outpostd is also Postfix's milter (smtpd_milters).
--
-- Modes per check come from the configuration, e.g.
--   service postout { checks = [PO6=log-only] }
local A = require "outpost.action"
local P = require "outpost.pipeline"
local dns = require "outpost.dns"
local lists = require "outpost.lists"
local address = require "site.address"
local directory = require "site.directory"
local domains = require "site.domains"
local message_checks = require "site.message_checks"

-- What an admin may want to change ------------------------------------------

-- The limit { } section PO7 counts against (docs/limits.md): 250 per 24 h by
-- default, a user's tier from the directory (mailSendLimit) up to its
-- max_override (1,000).
local LIMIT = "postout_rcpt"

-- PO4: may a logged-in user send with the null sender MAIL FROM:<>?  Yes:
-- mail programs send read receipts (RFC 8098) and other notifications that
-- way, the null sender names nobody (so it is no one else's address, G1), and
-- it still counts against the user's PO7 limit, which counts the login, not
-- the sender.  Set to false to refuse it.
local ALLOW_NULL_SENDER = true

-- PO4, PO6: the subaddress separator (alice+lists@example.org reaches and
-- belongs to alice@example.org), as Postfix's recipient_delimiter; false
-- when the mail system has none.
local TAG_SEPARATORS = "+"

-- PO6: the institution's own mail domains are those of
-- conf/lists/local_domains.txt, and, when true, also every domain the
-- directory knows (directory { domain_filter }).
local LOCAL_DOMAINS_FROM_DIRECTORY = true

-- PO3: accounts locked beyond the directory's lock flag (usually
-- compromised ones, locked in a hurry): one login name per line in
-- conf/lists/locked_accounts.txt.  Read when the policy loads; a reload
-- (SIGHUP) reads it again.
local LOCKED = lists.words("locked_accounts")
-- G4: the URL shorteners' domains, conf/lists/url_shorteners.txt
local SHORTENERS = lists.domains("url_shorteners")

-- The answers: { SMTP reply code, enhanced status code (RFC 3463, and the
-- IANA registry of RFC 5248), string.format text }, its arguments named in
-- the comment.  Every text says what was wrong and what to do, in words a
-- user of a mail program understands.
local say = A.replies {
    -- PO1
    no_tls = { 530, "5.7.10", "this service accepts mail only over an encrypted connection: set your mail program to use SSL/TLS on port 465 or STARTTLS on port 587" },
    -- PO2
    no_auth = { 530, "5.7.0", "authentication required: set your mail program to log in (SMTP authentication) with your user id and password" },
    -- PO3 (login)
    locked = { 550, "5.7.13", "your account %s is locked for sending mail, usually because it seemed to be misused; contact the service desk to have it unlocked" },
    -- PO3, PO4 (login)
    unknown_account = { 550, "5.7.1", "your account %s is not enabled for sending mail; contact the service desk" },
    -- PO4 (login, sender, the user's own addresses)
    not_your_sender = { 553, "5.7.1", "your account %s may not send as <%s>: set your mail program's sender address to one of your own: %s" },
    -- PO4 (login): the null sender, when ALLOW_NULL_SENDER is false
    null_sender = { 553, "5.7.1", "your account %s may not send with an empty sender address: set your mail program's sender address to one of your own" },
    -- PO4, PO5 (address)
    bad_address = { 501, "5.1.3", "<%s> is not a valid mail address: check its spelling" },
    -- PO5 (recipient domain, recipient)
    no_domain = { 550, "5.1.2", "the recipient's domain %s does not exist or has no mail server: check the spelling of <%s>" },
    -- PO5 (recipient domain)
    null_mx = { 556, "5.1.10", "the recipient's domain %s accepts no mail (it says so in DNS with a null MX): ask the recipient for another address" },
    -- PO5 (recipient domain, DNS error)
    dns_failed = { 451, "4.4.3", "cannot look up the recipient's domain %s right now (%s); your mail program will try again, or send again in a few minutes" },
    -- PO6 (recipient)
    no_mailbox = { 550, "5.1.1", "there is no mailbox <%s> here: check the spelling of the address" },
    -- PO3, PO4, PO6 (directory error)
    directory_failed = { 451, "4.3.0", "the user directory cannot be reached right now (%s); your mail program will try again, or send again in a few minutes" },
    -- PO7 (max, window hours, next free time UTC, how long until then)
    limit_reached = { 452, "4.5.3", "you have reached your limit of %d recipients per %d hours; the next recipient can be sent from %s UTC (in %s). To have the limit raised, contact the service desk" },
    -- PO7 (max): an operator set the limit to 0, or below what is asked
    limit_zero = { 452, "4.5.3", "your account may send to at most %d recipients per %d hours; contact the service desk" },
    -- PO7 (error)
    counters_failed = { 451, "4.3.0", "cannot count your recipients right now (%s); your mail program will try again, or send again in a few minutes" },
}

-- Helpers: nothing below needs changing to change what the policy answers --

local WHO = { stages = "MAIL RCPT" }                 -- PO1-PO4
local EACH_RCPT = { stages = "RCPT" }                -- PO5, PO6
local COUNTED = { stages = "RCPT", counts = true }   -- PO7

-- A line "erin" locks the login erin and erin@ANY.REALM: Cyrus SASL hands
-- Postfix the login with its realm (docs/testing.md, "SASL logins"), and
-- the admin locking an account in a hurry should not need to know which.
local function is_listed_locked(login)
    login = login:lower()
    return LOCKED[login] or LOCKED[address.without_realm(login) or login] or false
end

-- The logged-in user's directory entry, for PO3, PO4 and PO7 (whichever
-- runs first): entry, or false for none, or nil, token when the directory
-- cannot answer.
local account = P.derive(function(tx) return directory.user(tx.sasl_user) end)

-- The recipient, parsed (address.lua), or false.
local RCPT_FORM = { strip_tag = false, keep_case = true }
local recipient = P.derive(function(tx) return address.parse(tx.recipient, RCPT_FORM) or false end)

local function own_addresses(user)
    local list = {}
    for i = 1, math.min(#user.addresses, 3) do list[i] = user.addresses[i] end
    if #user.addresses > 3 then list[#list + 1] = "..." end
    if #list == 0 then return "(none: contact the service desk)" end
    return table.concat(list, ", ")
end

local function is_local_domain(domain)
    if not LOCAL_DOMAINS_FROM_DIRECTORY then return domains.LOCAL[domain] or false end
    return domains.is_local(domain)
end

-- PO7's options for limit.reserve: one table per distinct limit, made once,
-- instead of one per request.
local up_to = setmetatable({}, { __index = function(t, max)
    local opts = { max = max }
    t[max] = opts
    return opts
end })

local function duration(seconds)
    local m = math.max(1, math.ceil(seconds / 60))
    if m < 60 then return string.format("%d min", m) end
    return string.format("%d h %02d min", math.floor(m / 60), m % 60)
end

-- The checks ----------------------------------------------------------------

local policy = P.service "postout" {
    P.check("PO1", "session is TLS-encrypted", WHO, function(tx)
        if not tx.tls then return say.no_tls() end
    end),

    P.check("PO2", "user authenticated (SASL)", WHO, function(tx)
        if not tx.sasl_user then return say.no_auth() end
    end),

    P.check("PO3", "account is not locked", WHO, function(tx)
        -- without a login there is no account to check: PO2 answers that
        if not tx.sasl_user then return end
        -- the list first: it needs no lookup, and it is what an admin edits
        -- when an account must stop sending now
        if is_listed_locked(tx.sasl_user) then return say.locked(tx.sasl_user) end
        local user, err = account(tx)
        if user == nil then return say.directory_failed(err) end
        -- SASL accepted a login the mail directory does not know: nothing
        -- tells us what this account may do, so it may do nothing
        if not user then return say.unknown_account(tx.sasl_user) end
        if user.locked then return say.locked(tx.sasl_user) end
    end),

    P.check("PO4", "user may use the envelope sender", WHO, function(tx)
        if not tx.sasl_user then return end
        local sender = tx.sender
        local parsed = address.parse(sender)
        if not parsed then return say.bad_address(sender) end
        if parsed.null then
            if ALLOW_NULL_SENDER then return end
            return say.null_sender(tx.sasl_user)
        end
        local user, err = account(tx)
        if user == nil then return say.directory_failed(err) end
        if not user then return say.unknown_account(tx.sasl_user) end
        if directory.may_send_as(user, sender) then return end
        -- alice+lists@example.org is alice@example.org's
        local plain = address.untagged(sender, TAG_SEPARATORS)
        if plain and directory.may_send_as(user, plain) then return end
        return say.not_your_sender(tx.sasl_user, sender, own_addresses(user))
    end),

    P.check("PO5", "recipient domain has MX or A/AAAA in DNS", EACH_RCPT, function(tx)
        local rcpt = recipient(tx)
        if not rcpt or rcpt.null then return say.bad_address(tx.recipient) end
        -- our own domains (local_domains.txt) are delivered by our own
        -- servers whatever public DNS says; PO6 asks the directory for them
        if domains.LOCAL[rcpt.domain] then return end
        local where, err = dns.mail_domain(rcpt.domain)
        if where then return end
        if err == "nullmx" then return say.null_mx(rcpt.domain) end
        if err == "badname" then return say.bad_address(tx.recipient) end
        if domains.is_permanent(err) then return say.no_domain(rcpt.domain, tx.recipient) end
        -- timeout, servfail, refused, formerr, cancelled: ours, not the user's
        return say.dns_failed(rcpt.domain, err)
    end),

    P.check("PO6", "recipient exists when its domain is local", EACH_RCPT, function(tx)
        local rcpt = recipient(tx)
        if not rcpt or rcpt.null then return say.bad_address(tx.recipient) end
        local is_local, err = is_local_domain(rcpt.domain)
        if is_local == nil then return say.directory_failed(err) end
        if not is_local then return end -- another institution's: PO5 is all we can tell
        -- bob+news@example.org is delivered to bob@example.org
        local exists, derr = domains.has_mailbox(tx.recipient, TAG_SEPARATORS)
        if exists == nil then return say.directory_failed(derr) end
        if not exists then return say.no_mailbox(tx.recipient) end
    end),

    -- The account is counted, whatever sender it uses and however its
    -- login was spelt (alice and alice@example.org are one account:
    -- directory { account_attr }), up to its limit from the directory
    -- (capped at max_override).  Without an account: address.subject.
    P.check("PO7", "recipients per user per 24 h under the limit", COUNTED, function(tx)
        local opts, subject
        if tx.sasl_user then
            local user, err = account(tx)
            if user == nil then return say.directory_failed(err) end
            if user then opts, subject = user.limit and up_to[user.limit], user.account end
        end
        local r, err = P.count(tx, LIMIT, subject or address.subject(tx.req), opts)
        if not r then return say.counters_failed(err) end
        if r.ok then return end
        local hours = math.floor(r.window / 3600 + 0.5)
        if not r.next_free then return say.limit_zero(r.max, hours) end
        return say.limit_reached(r.max, hours, os.date("!%Y-%m-%d %H:%M", r.next_free),
            duration(r.next_free - os.time()))
    end),

    -- The message itself, at end of message, when outpostd is also
    -- Postfix's milter (listener postout-milter; docs/milter.md).  The
    -- shipped config introduces them in log-only mode (OP5).
    P.eom_check("PO8", "header From is one of the user's addresses", message_checks.po8),
    P.eom_check("G3", "the message follows RFC 5322", message_checks.g3),
    P.eom_check("G4", "no links to URL shorteners", message_checks.g4(SHORTENERS)),
}

-- G4 reads the body: the milter keeps its first 1 MiB
policy.keep_body = message_checks.BODY_BYTES
return policy
