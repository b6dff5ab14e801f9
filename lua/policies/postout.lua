-- postout: users' mail clients (MUAs) submitting on ports 465 (TLS) and 587
-- (STARTTLS).  Requirements PO1-PO7 of ../shared/spec/REQUIREMENTS.md §2,
-- one check per row, in the seed's order.  docs/services/postout.md explains
-- each check, its answer and its mode, and the decisions taken here.
--
-- What the seed wants from this service: few recipients, quick checks, and
-- an answer the user can act on at once, in the mail program, while they
-- are still looking at the message (a typo in a recipient is refused at
-- SMTP time, not bounced an hour later).  So:
--   * a user's error (no TLS, no login, a sender that is not theirs, a
--     recipient or domain that does not exist) answers 5xx and says what to
--     change;
--   * our own infrastructure failing (DNS, directory, counters) answers
--     4xx: the mail program keeps the message and tries again;
--   * the recipient limit answers 4xx with the limit and when the next
--     slot frees.
--
-- PO8, G3 and G4 read the message, so they run only where outpostd is also
-- Postfix's milter (smtpd_milters), at end of message.
--
-- When each check runs (Postfix's protocol_state):
--   MAIL, RCPT           PO1-PO4 (who sends, as whom)
--   RCPT                 PO5-PO7 (each recipient)
--   DATA, END-OF-MESSAGE PO7 commits the recipients reserved at RCPT
--                        (docs/limits.md); nothing else is checked
--   anything else        nothing (CONNECT, EHLO, VRFY, ETRN: DUNNO)
-- A request without protocol_state is treated as RCPT (every check runs).
--
-- Modes per check come from the configuration, e.g.
--   service postout { checks = [PO6=log-only] }
local A = require "outpost.action"
local P = require "outpost.pipeline"
local dns = require "outpost.dns"
local limit = require "outpost.limit"
local lists = require "outpost.lists"
local address = require "site.address"
local directory = require "site.directory"
local message_checks = require "site.message_checks"

-- ---------------------------------------------------------------------------
-- What an admin may want to change.
-- ---------------------------------------------------------------------------

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

-- A line "erin" locks the login erin and erin@ANY.REALM: Cyrus SASL hands
-- Postfix the login with its realm (docs/testing.md, "SASL logins"), and
-- the admin locking an account in a hurry should not need to know which.
local function is_listed_locked(login)
    login = login:lower()
    return LOCKED[login] or LOCKED[login:match("^(.+)@[^@]+$") or login] or false
end
local LOCAL_DOMAINS = lists.domains("local_domains")
-- G4: the URL shorteners' domains, conf/lists/url_shorteners.txt
local SHORTENERS = lists.domains("url_shorteners")

-- The answers.  code: the SMTP reply code; status: the enhanced status code
-- (RFC 3463, and the IANA registry of RFC 5248); text: string.format text,
-- its arguments named in the comment.  Every text says what was wrong and
-- what to do, in words a user of a mail program understands.
local TEXT = {
    -- PO1
    no_tls = { 530, "5.7.10", "this service accepts mail only over an encrypted connection: " ..
        "set your mail program to use SSL/TLS on port 465 or STARTTLS on port 587" },
    -- PO2
    no_auth = { 530, "5.7.0", "authentication required: set your mail program to log in " ..
        "(SMTP authentication) with your user id and password" },
    -- PO3 (login)
    locked = { 550, "5.7.13", "your account %s is locked for sending mail, usually because " ..
        "it seemed to be misused; contact the service desk to have it unlocked" },
    -- PO3, PO4 (login)
    unknown_account = { 550, "5.7.1", "your account %s is not enabled for sending mail; " ..
        "contact the service desk" },
    -- PO4 (login, sender, the user's own addresses)
    not_your_sender = { 553, "5.7.1", "your account %s may not send as <%s>: set your mail " ..
        "program's sender address to one of your own: %s" },
    -- PO4 (login): the null sender, when ALLOW_NULL_SENDER is false
    null_sender = { 553, "5.7.1", "your account %s may not send with an empty sender " ..
        "address: set your mail program's sender address to one of your own" },
    -- PO4, PO5 (address)
    bad_address = { 501, "5.1.3", "<%s> is not a valid mail address: check its spelling" },
    -- PO5 (recipient domain, recipient)
    no_domain = { 550, "5.1.2", "the recipient's domain %s does not exist or has no mail " ..
        "server: check the spelling of <%s>" },
    -- PO5 (recipient domain)
    null_mx = { 556, "5.1.10", "the recipient's domain %s accepts no mail (it says so in " ..
        "DNS with a null MX): ask the recipient for another address" },
    -- PO5 (recipient domain, DNS error)
    dns_failed = { 451, "4.4.3", "cannot look up the recipient's domain %s right now (%s); " ..
        "your mail program will try again, or send again in a few minutes" },
    -- PO6 (recipient)
    no_mailbox = { 550, "5.1.1", "there is no mailbox <%s> here: check the spelling of the " ..
        "address" },
    -- PO3, PO4, PO6 (directory error)
    directory_failed = { 451, "4.3.0", "the user directory cannot be reached right now (%s); " ..
        "your mail program will try again, or send again in a few minutes" },
    -- PO7 (max, window hours, next free time UTC, how long until then)
    limit_reached = { 452, "4.5.3", "you have reached your limit of %d recipients per %d hours; " ..
        "the next recipient can be sent from %s UTC (in %s). To have the limit raised, " ..
        "contact the service desk" },
    -- PO7 (max): an operator set the limit to 0, or below what is asked
    limit_zero = { 452, "4.5.3", "your account may send to at most %d recipients per %d hours; " ..
        "contact the service desk" },
    -- PO7 (error)
    counters_failed = { 451, "4.3.0", "cannot count your recipients right now (%s); your " ..
        "mail program will try again, or send again in a few minutes" },
}

-- ---------------------------------------------------------------------------
-- Helpers.  Nothing below needs changing to change what the policy answers.
-- ---------------------------------------------------------------------------

local function answer(key, ...)
    local t = TEXT[key]
    return A.reply(t[1], t[2], t[3], ...)
end

local SENDER_STAGES = { MAIL = true, RCPT = true, [""] = true }
local RCPT_STAGES = { RCPT = true, [""] = true }
local COMMIT_STAGES = { DATA = true, ["END-OF-MESSAGE"] = true }

-- The logged-in user's directory entry, looked up once per request for
-- PO3, PO4 and PO7 (whichever runs first): entry, or false for none, or
-- nil, token when the directory cannot answer.
local function account(tx)
    local a = rawget(tx, "_account")
    if a == nil then
        local err
        a, err = directory.user(tx.sasl_user)
        if a == nil then return nil, err end
        rawset(tx, "_account", a)
    end
    return a
end

-- The recipient, parsed (address.lua) once per request.
local RCPT_FORM = { strip_tag = false, keep_case = true }
local function recipient(tx)
    local r = rawget(tx, "_rcpt")
    if r == nil then
        r = address.parse(tx.recipient, RCPT_FORM) or false
        rawset(tx, "_rcpt", r)
    end
    return r
end

-- address without its +tag, or nil when it has none.
local UNTAGGED_FORM = { separators = TAG_SEPARATORS }
local function untagged(addr)
    if not TAG_SEPARATORS then return nil end
    local n = address.normalize(addr, UNTAGGED_FORM)
    if n and n ~= "" and n ~= directory.normalize_address(addr) then return n end
    return nil
end

local function own_addresses(user)
    local list = {}
    for i = 1, math.min(#user.addresses, 3) do list[i] = user.addresses[i] end
    if #user.addresses > 3 then list[#list + 1] = "..." end
    if #list == 0 then return "(none: contact the service desk)" end
    return table.concat(list, ", ")
end

local function is_local_domain(domain)
    if LOCAL_DOMAINS[domain] then return true end
    if not LOCAL_DOMAINS_FROM_DIRECTORY then return false end
    return directory.is_local_domain(domain)
end

local function duration(seconds)
    local m = math.max(1, math.ceil(seconds / 60))
    if m < 60 then return string.format("%d min", m) end
    return string.format("%d h %02d min", math.floor(m / 60), m % 60)
end

-- ---------------------------------------------------------------------------
-- The checks.
-- ---------------------------------------------------------------------------

local policy = P.service "postout" {
    P.check("PO1", "session is TLS-encrypted", function(tx)
        if not SENDER_STAGES[tx.stage] then return end
        if not tx.tls then return answer("no_tls") end
    end),

    P.check("PO2", "user authenticated (SASL)", function(tx)
        if not SENDER_STAGES[tx.stage] then return end
        if not tx.sasl_user then return answer("no_auth") end
    end),

    P.check("PO3", "account is not locked", function(tx)
        -- without a login there is no account to check: PO2 answers that
        if not SENDER_STAGES[tx.stage] or not tx.sasl_user then return end
        -- the list first: it needs no lookup, and it is what an admin edits
        -- when an account must stop sending now
        if is_listed_locked(tx.sasl_user) then return answer("locked", tx.sasl_user) end
        local user, err = account(tx)
        if user == nil then return answer("directory_failed", err) end
        -- SASL accepted a login the mail directory does not know: nothing
        -- tells us what this account may do, so it may do nothing
        if not user then return answer("unknown_account", tx.sasl_user) end
        if user.locked then return answer("locked", tx.sasl_user) end
    end),

    P.check("PO4", "user may use the envelope sender", function(tx)
        if not SENDER_STAGES[tx.stage] or not tx.sasl_user then return end
        local sender = tx.sender
        local parsed = address.parse(sender)
        if not parsed then return answer("bad_address", sender) end
        if parsed.null then
            if ALLOW_NULL_SENDER then return end
            return answer("null_sender", tx.sasl_user)
        end
        local user, err = account(tx)
        if user == nil then return answer("directory_failed", err) end
        if not user then return answer("unknown_account", tx.sasl_user) end
        if directory.may_send_as(user, sender) then return end
        -- alice+lists@example.org is alice@example.org's
        local plain = untagged(sender)
        if plain and directory.may_send_as(user, plain) then return end
        return answer("not_your_sender", tx.sasl_user, sender, own_addresses(user))
    end),

    P.check("PO5", "recipient domain has MX or A/AAAA in DNS", function(tx)
        if not RCPT_STAGES[tx.stage] then return end
        local rcpt = recipient(tx)
        if not rcpt or rcpt.null then return answer("bad_address", tx.recipient) end
        -- our own domains (local_domains.txt) are delivered by our own
        -- servers whatever public DNS says; PO6 asks the directory for them
        if LOCAL_DOMAINS[rcpt.domain] then return end
        local where, err = dns.mail_domain(rcpt.domain)
        if where then return end
        if err == "nullmx" then return answer("null_mx", rcpt.domain) end
        if err == "nxdomain" or err == "nodata" then
            return answer("no_domain", rcpt.domain, tx.recipient)
        end
        if err == "badname" then return answer("bad_address", tx.recipient) end
        -- timeout, servfail, refused, formerr, cancelled: ours, not the user's
        return answer("dns_failed", rcpt.domain, err)
    end),

    P.check("PO6", "recipient exists when its domain is local", function(tx)
        if not RCPT_STAGES[tx.stage] then return end
        local rcpt = recipient(tx)
        if not rcpt or rcpt.null then return answer("bad_address", tx.recipient) end
        local is_local, err = is_local_domain(rcpt.domain)
        if is_local == nil then return answer("directory_failed", err) end
        if not is_local then return end -- another institution's: PO5 is all we can tell
        local exists
        exists, err = directory.mailbox_exists(tx.recipient)
        if exists == nil then return answer("directory_failed", err) end
        if exists then return end
        -- bob+news@example.org is delivered to bob@example.org
        local plain = untagged(tx.recipient)
        if plain then
            exists, err = directory.mailbox_exists(plain)
            if exists == nil then return answer("directory_failed", err) end
            if exists then return end
        end
        return answer("no_mailbox", tx.recipient)
    end),

    P.check("PO7", "recipients per user per 24 h under the limit", function(tx)
        local instance = tx.instance
        if COMMIT_STAGES[tx.stage] then
            -- keep what Postfix accepted (recipient_count), give back the
            -- recipients that later restrictions rejected; at END-OF-MESSAGE
            -- a no-op once DATA committed
            if instance ~= "" then limit.commit(instance, tonumber(tx.attrs.recipient_count)) end
            return
        end
        if not RCPT_STAGES[tx.stage] then return end
        -- the login is counted, whatever sender it uses (address.subject)
        local opts
        if tx.sasl_user then
            local user, err = account(tx)
            if user == nil then return answer("directory_failed", err) end
            if user then opts = { max = user.limit } end -- the tier; capped at max_override
        end
        local subject = address.subject(tx.req)
        local r, err
        if instance ~= "" then
            r, err = limit.reserve(LIMIT, subject, instance, 1, opts)
        else
            r, err = limit.add(LIMIT, subject, 1, opts)
        end
        if not r then return answer("counters_failed", err) end
        if r.ok then return end
        local hours = math.floor(r.window / 3600 + 0.5)
        if not r.next_free then return answer("limit_zero", r.max, hours) end
        return answer("limit_reached", r.max, hours, os.date("!%Y-%m-%d %H:%M", r.next_free),
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
