-- mailout: MTAs inside the campus network relaying on port 25
-- (../shared/spec/REQUIREMENTS.md section 3, docs/services/mailout.md).
--
-- The clients are mail servers: they queue and retry on 4xx and bounce on
-- 5xx.  So a check answers 5xx only when the sending MTA's admin must change
-- something (a network, a sender, a recipient), and 4xx whenever the cause is
-- temporary: our own DNS, LDAP or counter store failing, a limit reached, a
-- sender verification still running (MO5).
--
-- Postfix asks at RCPT (every check), and at DATA and END-OF-MESSAGE, where
-- the policy only settles MO7's reservations (conf/postfix/mailout/,
-- counts = true).
--
-- The checks run in this order, not the table's: the ones that read only
-- the request and the lists first (MO1, MO2, MO3, MO9), then the ones that
-- wait for the directory, DNS or a call-out (MO5, MO4, MO6), and MO7 last,
-- so a recipient is counted only when every other check accepted it.  MO9
-- runs before MO5 because there is no point verifying a sender the MTA may
-- not use anyway.
local A = require "outpost.action"
local P = require "outpost.pipeline"
local outpost = require "outpost"
local lists = require "outpost.lists"
local dns = require "outpost.dns"
local smtp = require "outpost.smtp"
local address = require "site.address"
local directory = require "site.directory"
local domains = require "site.domains"
local dkim = require "site.dkim"

-- Settings an admin may want to change (policy.settings; specs change them too).
local SETTINGS = {
    limit = "mailout_rcpt",     -- limit mailout_rcpt { max = 1000 (no FCrDNS); max_override = 10000 }
    fcrdns_max = 10000,         -- MO7 with forward-confirmed reverse DNS (capped at max_override)
    callout_budget = 1.5,       -- MO5: seconds a call-out may hold the RCPT before "pending" (4xx)
    authserv_id = "mailout.outpost", -- MO8: the Authentication-Results header's authserv-id (RFC 8601): this host's name
}

-- Every reply, in one place: 5.X.Y rejects, 4.X.Y defers.  %s/%d are filled
-- in by the check; the texts name what is wrong and what the MTA's admin
-- can do about it.
-- MO5's sender answers use X.7.1, not the sender-address codes X.1.7 and
-- X.1.8: Postfix asks at RCPT (smtpd_recipient_restrictions) and rewrites
-- any X.1.x code there into a recipient-address code (smtpd_dsn_fix: 5.1.8
-- becomes 5.1.2, "bad destination system"), which would blame the
-- recipient.  X.7.1 reaches the MTA as written (spec/e2e/test_mailout_postfix.sh).
local say = A.replies {
    MO1 = { "5.7.1", "client %s is not in the campus network; mailout relays only for campus mail servers" },
    MO2 = { "5.7.1", "mail server %s is blocked from mailout (%s); contact the postmaster to lift the block" },
    MO3 = { "5.7.10", "mail servers in network area %s must use TLS: enable STARTTLS for port 25" },
    MO4_nullmx = { "5.1.10", "recipient domain %s accepts no mail (null MX)" },
    MO4_none = { "5.1.2", "recipient domain %s does not exist or has no mail server (no MX, A or AAAA)" },
    MO4_dns = { "4.4.3", "cannot look up recipient domain %s (DNS %s), try again later" },
    MO5_syntax = { "5.7.1", "envelope sender %s is not a valid address" },
    MO5_unknown = { "5.7.1", "sender %s does not exist in the institution's directory; use an address that receives mail" },
    MO5_foreign = { "5.7.1", "sender domain %s belongs neither to the institution nor to a campus mail server" },
    MO5_refused = { "5.7.1", "sender %s is refused by its own mail server (%s); use an address that receives mail" },
    MO5_pending = { "4.7.1", "sender %s is being verified with its mail server, try again in a few minutes" },
    MO5_tempfail = { "4.7.1", "cannot verify sender %s with its mail server (%s), try again later" },
    MO5_directory = { "4.3.0", "cannot check sender %s: directory unavailable (%s), try again later" },
    MO6 = { "5.7.1", "recipient %s accepts mail only from authenticated senders; submit it through postout (port 587) with your login" },
    MO6_directory = { "4.3.0", "cannot check recipient %s: directory unavailable (%s), try again later" },
    MO7 = { "4.7.1", "mail server %s reached its limit of %d recipients per %d h%s; next slot at %s UTC" },
    MO7_store = { "4.3.0", "recipient counter unavailable (%s), try again later" },
    MO9_unregistered = { "5.7.1", "mail server %s has no registered mail domains; ask the postmaster to register them for mailout" },
    MO9 = { "5.7.1", "mail server %s may send only as %s, not as %s" },
    MO8 = { "5.7.1", "mail from %s (%s) needs a valid DKIM signature of the institution; found: %s. Send it through postout or Exchange, or sign it with a key of the institution's signing domains" },
    MO8_dns = { "4.7.5", "cannot fetch the DKIM key for mail from %s (DNS timeout or failure), try again later" },
}
local MO7_FCRDNS_HINT = " (10,000 with a forward-confirmed reverse DNS entry)"
local MO7_FCRDNS = { max = SETTINGS.fcrdns_max } -- limit.reserve's opts, made once

-- The lists, read when the policy loads (conf/lists/README.md); a broken
-- line refuses the reload with its file and line.
local CAMPUS = lists.networks("campus_networks")        -- MO1; labels are network areas (MO3)
local BLOCKED = lists.networks("mta_blocklist")         -- MO2
-- MO3; an area name campus_networks.txt does not use is a typo: refused
local TLS_AREAS = lists.words_of("tls_required_areas", lists.labels("campus_networks"),
    "network area of campus_networks")
-- MO9 (and MO5): "NETWORK DOMAIN..." lines; the longest prefix names the
-- MTA, whose domains are its own.
local MTAS = lists.network_map("mailout_mta_domains")

-- When the checks run: every check before DATA, MO4, MO6 and MO7 for a
-- request that names a recipient; MO7 settles at DATA and END-OF-MESSAGE.
local BEFORE_DATA = { stages = "not DATA END-OF-MESSAGE" }
local EACH_RCPT = { stages = "not DATA END-OF-MESSAGE", per_recipient = true }
local COUNTED = { stages = "not DATA END-OF-MESSAGE", per_recipient = true, counts = true }

local KEEP_TAG = { strip_tag = false }
local sender = P.derive(function(tx) return address.parse(tx.sender, KEEP_TAG) or false end)

local policy = P.service "mailout" {
    P.check("MO1", "client is inside the campus network", BEFORE_DATA, function(tx)
        if not CAMPUS:match(tx.client) then return say.MO1(tx.client) end
    end),

    P.check("MO2", "client is not on the MTA block list", BEFORE_DATA, function(tx)
        local reason = BLOCKED:match(tx.client)
        if reason then return say.MO2(tx.client, reason ~= "" and reason or "listed") end
    end),

    -- The pipeline's mode is per service, but the seed enforces TLS per
    -- network area: so this check answers only for the areas listed in
    -- tls_required_areas.txt, and for every other area logs what it would
    -- have answered (grep "MO3 .* not enforced") and lets the mail pass.
    -- MO3=log-only in the config turns the enforcing areas to logging too.
    P.check("MO3", "TLS, enforced in the configured network areas", BEFORE_DATA, function(tx)
        if tx.tls then return nil end
        local area = CAMPUS:match(tx.client) or ""
        if TLS_AREAS[area:lower()] then return say.MO3(area) end
        outpost.log("notice", string.format("MO3 (TLS) not enforced in network area %s: " ..
            "client %s sent without TLS", area ~= "" and area or "-", tx.client))
    end),

    P.check("MO9", "the MTA uses only its own mail domains as sender", BEFORE_DATA, function(tx)
        local s = sender(tx)
        if not s or s.null then return nil end -- bounces (<>) have no domain; MO5 refuses a bad address
        local mta = MTAS:match(tx.client)
        if not mta then return say.MO9_unregistered(tx.client) end
        if not mta.domains[s.domain] then return say.MO9(tx.client, mta.list, s.domain) end
    end),

    -- Institution addresses are in the directory; other campus domains are
    -- on their MTA's own server, which only an SMTP call-out can ask.  The
    -- call-out waits at most SETTINGS.callout_budget, then goes on in the background
    -- and fills its cache, so the MTA's retry after our 4xx gets the verdict.
    P.check("MO5", "sender is a valid institution or campus address", BEFORE_DATA, function(tx)
        local s = sender(tx)
        if s and s.null then return nil end -- the null sender of bounces is valid
        if not s then return say.MO5_syntax(tx.sender) end
        -- a campus MTA's domain needs no directory: the call-out asks its MX
        local loc, err = domains.LOCAL[s.domain] or false, nil
        if not loc and not MTAS.domains[s.domain] then loc, err = directory.is_local_domain(s.domain) end
        if loc == nil then return say.MO5_directory(tx.sender, err) end
        if loc then
            -- a +tag is delivered to its mailbox: ask for the address without it
            local exists, derr = directory.mailbox_exists(address.normalize(tx.sender))
            if exists == nil then return say.MO5_directory(tx.sender, derr) end
            if not exists then return say.MO5_unknown(tx.sender) end
            return nil
        end
        if not MTAS.domains[s.domain] then return say.MO5_foreign(s.domain) end
        local verdict, reply = smtp.verify(tx.sender, { budget = SETTINGS.callout_budget })
        if verdict == "accepted" then return nil
        elseif verdict == "rejected" then return say.MO5_refused(tx.sender, reply)
        elseif verdict == "pending" then return say.MO5_pending(tx.sender)
        elseif verdict == nil then return say.MO5_syntax(tx.sender)
        end
        return say.MO5_tempfail(tx.sender, reply)
    end),

    P.check("MO4", "recipient domain has an MX or an A/AAAA record", EACH_RCPT, function(tx)
        local r = address.parse(tx.recipient)
        local domain = r and r.domain or (tx.recipient:match("@([^@]*)$") or tx.recipient)
        local where, err = dns.mail_domain(domain)
        if where then return nil end
        if err == "nullmx" then return say.MO4_nullmx(domain) end
        if domains.is_permanent(err) then return say.MO4_none(domain) end
        return say.MO4_dns(domain, err)
    end),

    -- Distribution lists that only authenticated senders may use: an MTA
    -- cannot authenticate its users to us, so it must not reach them.
    P.check("MO6", "recipient does not require an authenticated sender", EACH_RCPT, function(tx)
        local r = address.parse(tx.recipient, KEEP_TAG)
        if not r or r.null then return nil end -- MO4 has answered for a bad recipient
        local loc, err = domains.is_local(r.domain)
        if loc == nil then return say.MO6_directory(tx.recipient, err) end
        if not loc then return nil end -- only the institution's directory has protected lists
        local protected, perr = directory.requires_authenticated_sender(tx.recipient)
        if protected == nil then return say.MO6_directory(tx.recipient, perr) end
        if protected then return say.MO6(tx.recipient) end
    end),

    -- Recipients per sending IP per 24 h: 1,000, or 10,000 when the IP has
    -- forward-confirmed reverse DNS.  When that lookup fails temporarily the
    -- lower limit applies (logged) rather than a 4xx: a DNS hiccup must not
    -- stop all campus mail, and an MTA under 1,000 notices nothing.  The
    -- recipient is reserved for the transaction (Postfix's instance) and
    -- settled at DATA (counts = true).
    P.check("MO7", "recipients per sending IP per 24 h (more with FCrDNS)", COUNTED, function(tx)
        local name, why = dns.fcrdns(tx.client)
        local opts
        if name then
            opts = MO7_FCRDNS
        elseif why ~= "nomatch" and why ~= "nxdomain" and why ~= "badname" then
            outpost.log("notice", string.format("MO7: FCrDNS of %s failed (%s); the limit " ..
                "without FCrDNS applies", tx.client, tostring(why)))
        end
        local r, err = P.count(tx, SETTINGS.limit, tx.client, opts)
        if not r then return say.MO7_store(err) end
        if not r.ok then
            return say.MO7(tx.client, r.max, math.max(1, math.floor(r.window / 3600)),
                name and "" or MO7_FCRDNS_HINT, r.next_free and os.date("!%H:%M", r.next_free) or "never")
        end
    end),

    -- At end of message (the milter, listener mailout-milter): mail whose
    -- header From, or envelope sender, is an institution domain carries a
    -- valid DKIM signature of one of the institution's signing domains
    -- (site/dkim.lua; the lists dkim_institution_domains and
    -- dkim_signing_domains).  The verifier starts at end of headers and
    -- hashes the body as it streams (on_eoh, on_body below).
    P.eom_check("MO8", "institution mail carries the institution's DKIM signature", function(tx)
        return dkim.mo8(tx, say)
    end),
}

-- MO8's verifier: the key lookups go out at end of headers, the body is
-- hashed chunk by chunk and never kept.
policy.on_eoh = dkim.on_eoh
policy.on_body = dkim.on_body
-- a message that goes on carries the verdicts (RFC 8601)
policy.on_eom = dkim.with_results_header(policy.on_eom, SETTINGS)
policy.settings = SETTINGS
return policy
