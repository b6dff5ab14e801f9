-- outpost.pipeline: a policy that reads like the requirement table.
--
--   local P = require "outpost.pipeline"
--   local say = A.replies { no_tls = { "5.7.1", "use STARTTLS on 587 or TLS on 465" } }
--   return P.service "postout" {
--       P.check("PO1", "session is encrypted", { stages = "MAIL RCPT" }, function(tx)
--           if not tx.tls then return say.no_tls() end
--       end),
--       ...
--   }
--
-- Checks run in order.  A check returns nil to pass, or an outpost.action.
-- Its mode comes from the configuration of the service the policy is loaded
-- for (service { checks = [...], tenant_checks = [...] }):
--   enforce   the action is the answer (the decision log names the check)
--   log-only  the action is logged as what it would have answered, and the
--             next check runs (how a new check is introduced: MO3, PO8)
--   off       the check does not run
--   tag       (end-of-message checks) the message goes on with a header
--             X-Outpost-<ID>: <the action's tag, or its text> that says what
--             the check found, e.g. X-Outpost-G4: url-shortener bit.ly
-- A mode for an id the policy has no check for refuses the load, so a typo
-- in the configuration cannot silently leave a check enforced.
-- When every check passes the answer is DUNNO: Postfix's own restrictions
-- go on.
--
-- P.service(name, { link = true }) { ... } links the policy requests and the
-- milter session of one transaction (lua/lib/outpost/transaction.lua): each policy
-- answer is recorded (rcpt:<recipient> or stage:<DATA|END-OF-MESSAGE> =
-- the action's text, logonly:<ID> = what a log-only check would have
-- answered, note:<name> for what checks put in tx.notes), end-of-message
-- checks read it as tx.policy (false when the milter cannot find it), the
-- end of message commits what the transaction reserved (outpost.limit) if
-- the message passes and releases it if not, and an on_abort releases it.

-- The globals read on every request, as locals: a global is a lookup
-- through the file's frozen environment and the sandbox's tables.
local rawget, setmetatable, tonumber = rawget, setmetatable, tonumber
local A = require "outpost.action"
local outpost = require "outpost"

local M = {}

local MODES = { enforce = true, ["log-only"] = true, off = true, tag = true }

-- When a check runs: opts.stages names Postfix's protocol_states, e.g.
-- "MAIL RCPT"; "not DATA END-OF-MESSAGE" is every other one.  A request
-- without protocol_state is RCPT.  Without stages a check runs at every
-- stage.  Parsed when the policy loads: a name that is no protocol_state
-- refuses the load.
local STAGE_NAMES = { CONNECT = true, EHLO = true, HELO = true, MAIL = true, RCPT = true,
    DATA = true, ["END-OF-MESSAGE"] = true, VRFY = true, ETRN = true }
local SETTLE = { DATA = true, ["END-OF-MESSAGE"] = true }

local function stage_set(id, spec)
    if spec == nil then return nil end
    if type(spec) ~= "string" then error("check " .. id .. ": stages must be a string", 3) end
    local set, negate = {}, false
    for word in spec:gmatch("%S+") do
        if word == "not" and next(set) == nil and not negate then
            negate = true
        elseif STAGE_NAMES[word] then
            set[word] = true
        else
            error("check " .. id .. ": '" .. word .. "' is no protocol_state", 3)
        end
    end
    if next(set) == nil then error("check " .. id .. ": stages names no protocol_state", 3) end
    if negate then
        -- a protocol_state this list does not know (a later Postfix's) is
        -- one of "every other"
        local all = setmetatable({}, { __index = function() return true end })
        for name in pairs(STAGE_NAMES) do all[name] = not set[name] end
        set = all
    end
    return set
end

-- P.check(id, description, [opts,] fn).  opts:
--   stages   when it runs (above)
--   per_recipient  runs only for a request that names a recipient
--   counts   the check counts recipients with P.count (PO7, MO7, AO8): at
--            DATA and END-OF-MESSAGE, instead of running it, the pipeline
--            keeps what Postfix accepted (recipient_count) of what the
--            transaction reserved and gives back the rest (docs/limits.md)
function M.check(id, description, opts, fn)
    if fn == nil and type(opts) == "function" then opts, fn = nil, opts end
    if type(id) ~= "string" or not id:match("^%u+%d+$") then
        error("check: the id must be a requirement id such as PO1, got " .. tostring(id), 2)
    end
    if type(description) ~= "string" or description == "" then
        error("check " .. id .. ": a one-line description is needed", 2)
    end
    if opts ~= nil and type(opts) ~= "table" then error("check " .. id .. ": opts must be a table", 2) end
    if type(fn) ~= "function" then error("check " .. id .. ": a function is needed", 2) end
    opts = opts or {}
    for k in pairs(opts) do
        if k ~= "stages" and k ~= "counts" and k ~= "per_recipient" then error("check " .. id .. ": unknown option " .. tostring(k), 2) end
    end
    return { id = id, description = description, fn = fn, stages = stage_set(id, opts.stages),
        counts = opts.counts and true or nil, per_recipient = opts.per_recipient and true or nil }
end

-- P.detail(tx, text): what a check found, for the decision line of the
-- answer, whatever it is (detail="..."; several checks' are joined by "; "):
-- the details behind a pass are logged too (AO6: the scanners' verdicts).
function M.detail(tx, text)
    local d = rawget(tx, "details")
    -- a plain store, not rawset: tx's metatable has no __newindex, so this
    -- is as raw, and a read-only table handed in instead of a tx refuses it
    -- (the sandbox's checking rawset is one more Lua call per store)
    tx.details = d and (d .. "; " .. text) or text
end

-- A per-request value, computed at its first use and kept for the other
-- checks of the request (whichever of them is off):
--   local account = P.derive(function(tx) return directory.user(tx.sasl_user) end)
--   local user, err = account(tx)
-- A nil value (a lookup that failed: nil, token) is not kept, so the next
-- check asks again; false is.
function M.derive(fn)
    if type(fn) ~= "function" then error("derive: a function is needed", 2) end
    local key = {} -- a key of its own in tx: no name to collide with
    return function(tx)
        local v = rawget(tx, key)
        if v ~= nil then return v end
        local err
        v, err = fn(tx)
        if v ~= nil then tx[key] = v end -- raw: see M.detail
        return v, err
    end
end

-- outpost.explain (engine/lua/lua_api_explain.c): a request being explained
-- (outpostctl explain, outpostd ask --dry-run) has req.explain set, and
-- then, only then, each check is recorded in its trace: id, mode, verdict,
-- the action, its time; the lookups and counter peeks a check makes
-- record themselves from C.  An ordinary request reads one field and
-- builds nothing.
local explain_module
local function explainer()
    explain_module = explain_module or require "outpost.explain"
    return explain_module
end

-- outpost.limit, required at its first use, as the policies did before
-- they counted through here: a spec that fakes the store's failure on its
-- own require of it finds the table the pipeline uses.
local limit_module
local function limits()
    limit_module = limit_module or require "outpost.limit"
    return limit_module
end

-- P.count(tx, limit, subject [, opts]): one recipient more for subject
-- under the limit { } named limit: reserved for the transaction (Postfix's
-- instance), so what a later restriction refuses goes back when the check
-- (declared with counts = true) settles at DATA, or added for good when the
-- request has no instance.  limit.reserve's answer, or nil, token.
function M.count(tx, name, subject, opts)
    local limit = limits()
    local instance = tx.instance
    if instance ~= "" then return limit.reserve(name, subject, instance, 1, opts) end
    return limit.add(name, subject, 1, opts)
end

-- A check of the message (milter end of message, docs/milter.md): the same
-- modes, run by the policy's on_eom over a tx that also has tx.headers,
-- tx.body, tx.macros, tx.truncated and tx.ctx (the milter's ctx).  When
-- tx.truncated is set (the milter kept only part of the header) no check
-- runs: the answer is a refusal, and the engine's header_overflow_action.  A service with such
-- checks gets an on_eom handler; one with only these has no on_request.
function M.eom_check(id, description, fn)
    local c = M.check(id, description, fn)
    c.phase = "eom"
    return c
end

-- What checks read: the request's attributes under the names the
-- requirements use, derived once per request.
local derive = {
    tls = function(tx) return (tx.attrs.encryption_protocol or "") ~= "" end,
    sasl_user = function(tx)
        local u = tx.attrs.sasl_username
        if u and u ~= "" then return u end
        return false
    end,
    sender = function(tx) return tx.attrs.sender or "" end,
    recipient = function(tx) return tx.attrs.recipient or "" end,
    client = function(tx) return tx.attrs.client_address or "" end,
    client_name = function(tx) return tx.attrs.reverse_client_name or "" end,
    instance = function(tx) return tx.attrs.instance or "" end,
    stage = function(tx) return tx.attrs.protocol_state or "" end,
    notes = function() return {} end,
    -- what the policy side recorded for this transaction (link = true)
    policy = function(tx)
        local transaction = require "outpost.transaction"
        if tx.ctx then return transaction.of_message(tx.ctx) or false end
        return transaction.of_request(tx.attrs) or false
    end,
}
-- No __newindex: the derived value is stored with a plain assignment,
-- which is a raw store on a tx and raises on a read-only table, where the
-- sandbox's rawset would cost a checking call on every field of every
-- request (and stop the JIT's trace).
local tx_mt = {
    __index = function(tx, k)
        local f = derive[k]
        if f == nil then return nil end
        local v = f(tx)
        tx[k] = v
        return v
    end,
}

-- A tx is made with the keys of the fields most checks derive already in
-- its hash part: eleven keys in the constructor give it sixteen slots, and
-- clearing a placeholder keeps its key's slot (a nil value reads as absent:
-- __index still derives it, pairs and rawget do not see it).  Made with
-- its four fields only, it grew twice on every request as the checks
-- derived their fields (4 -> 8 -> 16 slots: two new hash parts, each key
-- moved again).
local function request_tx(req)
    local tx = { req = req, attrs = req.attrs, service = req.service, tenant = req.tenant,
        stage = false, sasl_user = false, sender = false, recipient = false, client = false,
        instance = false, tls = false }
    tx.stage, tx.sasl_user, tx.sender, tx.recipient = nil, nil, nil, nil
    tx.client, tx.instance, tx.tls = nil, nil, nil
    setmetatable(tx, tx_mt)
    return tx
end

-- At end of message the milter's macros and envelope stand in for the
-- policy attributes, so tx.sasl_user, tx.sender, tx.client, tx.tls and
-- tx.instance mean the same in both phases.
local function eom_tx(ctx)
    local macros = ctx.macros or {}
    local attrs = {
        sasl_username = macros["{auth_authen}"],
        sender = ctx.sender,
        client_address = ctx.client and ctx.client.address,
        reverse_client_name = ctx.client and ctx.client.name,
        encryption_protocol = macros["{tls_version}"],
        instance = macros.i,
        protocol_state = "END-OF-MESSAGE",
    }
    local tx = setmetatable({ ctx = ctx, attrs = attrs, service = ctx.service, tenant = ctx.tenant,
        headers = ctx.headers or {}, body = ctx.body or "", macros = macros,
        truncated = ctx.truncated }, tx_mt)
    return tx
end

local function modes_of(config, service, checks_by_id)
    local svc = config.services[service] or { checks = {}, tenant_checks = {} }
    local function validate(modes, where)
        for id, mode in pairs(modes) do
            if not checks_by_id[id] then
                error(string.format("service %s: %s names %s, which is not a check of this " ..
                    "policy", service, where, id), 0)
            end
            if mode == "tag" and checks_by_id[id].phase ~= "eom" then
                error(string.format("service %s: %s: %s=tag, but only end-of-message checks " ..
                    "can tag (the milter adds the header)", service, where, id), 0)
            end
            assert(MODES[mode])
        end
    end
    validate(svc.checks, "checks")
    local per_tenant = {}
    for tenant, modes in pairs(svc.tenant_checks) do
        validate(modes, "tenant_checks (" .. tenant .. ")")
        local merged = {}
        for id, mode in pairs(svc.checks) do merged[id] = mode end
        for id, mode in pairs(modes) do merged[id] = mode end
        per_tenant[tenant] = merged
    end
    return svc.checks, per_tenant
end

-- The fields a policy answer leaves for the milter (link = true).
local function record(tx, action, logged)
    local transaction = require "outpost.transaction"
    local f = {}
    if tx.stage == "RCPT" then
        f["rcpt:" .. string.lower(tx.recipient)] = action.text
    else
        f["stage:" .. tx.stage] = action.text
    end
    for id, text in pairs(logged) do f["logonly:" .. id] = text end
    for k, v in pairs(rawget(tx, "notes") or {}) do f["note:" .. k] = v end
    local ok, err = transaction.record(tx.attrs, f)
    if not ok then outpost.log("warning", "transaction link: " .. tostring(err)) end
end

-- End of message (link = true): a message the milter lets through keeps
-- what the transaction reserved, one per recipient Postfix accepted; a
-- refused one gives it back.  After the policy committed (at DATA) both
-- find nothing left.
local REFUSED = { reject = true, defer = true, defer_if_permit = true, defer_if_reject = true,
    discard = true }
local function settle(tx, action)
    local transaction = require "outpost.transaction"
    if REFUSED[action.kind] then
        transaction.release(tx.ctx)
        return
    end
    local committed = transaction.commit(tx.ctx, #(tx.ctx.rcpts or {}))
    if committed and committed > 0 then
        outpost.log("info", string.format(
            "transaction: %d reserved recipient(s) committed at end of message", committed))
    end
end

function M.service(name, opts)
    opts = opts or {}
    return function(checks)
        local by_id = {}
        for i, c in ipairs(checks) do
            if type(c) ~= "table" or not c.fn then
                error(string.format("service %s: item %d is not a check (use P.check)", name, i), 2)
            end
            if by_id[c.id] then error("service " .. name .. ": check " .. c.id .. " twice", 2) end
            by_id[c.id] = c
        end
        local config = outpost.config()
        local base, per_tenant = modes_of(config, config.loading or name, by_id)

        -- hits: the check answered; enforced / logged: what became of it
        local stats = {}
        for _, c in ipairs(checks) do
            stats[c.id] = { hits = 0, enforced = 0, logged = 0, tagged = 0 }
        end

        local request_checks, eom_checks = {}, {}
        for _, c in ipairs(checks) do
            local list = c.phase == "eom" and eom_checks or request_checks
            list[#list + 1] = c
        end
        local function handler(list, make_tx, base_modes, tenant_modes, link, later)
            local n = #list
            return function(req)
                local tx = make_tx(req)
                local modes = tenant_modes[req.tenant] or base_modes
                local logged = link and {} or nil
                -- a dry run's trace; nil for every ordinary request
                local X = make_tx == request_tx and rawget(req, "explain") and explainer() or nil
                -- A header the milter could not keep whole is not judged on
                -- its part: the engine answers the service's
                -- header_overflow_action, and a linked transaction gives
                -- back what it reserved, as for any refusal.
                local truncated = rawget(tx, "truncated")
                if truncated then
                    outpost.log("notice", "message checks not run: the message has " .. truncated)
                    local answer = A.reject("5.3.4", "message header too large to check")
                    if link then link(tx, answer, logged) end
                    return answer
                end
                local answer, tags, decided
                for i = 1, n do
                    -- named `check`: the CPU watchdog reports the id of the check it stops
                    -- (engine/core/watchdog.c)
                    local check = list[i]
                    local mode = modes[check.id] or "enforce"
                    local action, ran
                    if X then X.check_begin(check.id, check.description, mode) end
                    if mode == "off" then
                        action = nil
                    elseif check.counts and SETTLE[tx.stage] then
                        -- without recipient_count every reservation is kept
                        if tx.instance ~= "" then limits().commit(tx.instance, tonumber(tx.attrs.recipient_count)) end
                        ran = "settle"
                    elseif (check.stages == nil
                            or check.stages[tx.stage == "" and "RCPT" or tx.stage])
                        and not (check.per_recipient and tx.recipient == "") then
                        action = check.fn(tx)
                        ran = true
                    end
                    if X then
                        if mode == "off" then X.check_end("off", "mode off: not run")
                        elseif ran == "settle" then
                            X.check_end("settle", "keeps the recipients Postfix accepted of what the transaction reserved")
                        elseif not ran then
                            X.check_end("skipped", check.per_recipient and tx.recipient == ""
                                and "not run: no recipient in this request"
                                or "not run at protocol_state " .. (tx.stage == "" and "RCPT" or tx.stage))
                        elseif action == nil or not A.is_action(action) then X.check_end("pass")
                        elseif mode == "enforce" then X.check_end("answer", action.text)
                        elseif mode == "tag" then X.check_end("tag", rawget(action, "tag") or action.text)
                        else X.check_end("log-only", "would answer " .. action.text) end
                    end
                    if action ~= nil then
                        if not A.is_action(action) then
                            error(check.id .. ": a check returns nil or an outpost.action, not a " ..
                                type(action), 0)
                        end
                        -- a dry run is not an answer: the policy's counts stay
                        local st = X and { hits = 0, enforced = 0, logged = 0, tagged = 0 }
                            or stats[check.id]
                        st.hits = st.hits + 1
                        if mode == "enforce" then
                            st.enforced = st.enforced + 1
                            action.check = check.id
                            answer = action
                            decided = i
                            break
                        end
                        if mode == "tag" then
                            st.tagged = st.tagged + 1
                            tags = tags or {}
                            tags[#tags + 1] = { check.id, rawget(action, "tag") or action.text }
                            outpost.log("notice", string.format("%s (%s) tagged: %s",
                                check.id, check.description, tags[#tags][2]))
                        else
                            st.logged = st.logged + 1
                            if logged then logged[check.id] = action.text end
                            outpost.log("notice", string.format(
                                "%s (%s) log-only: would answer %s", check.id, check.description,
                                action.text))
                        end
                    end
                end
                if X then
                    -- every check of the policy is listed, in order
                    for j = (decided or n) + 1, n do
                        X.check_begin(list[j].id, list[j].description, modes[list[j].id] or "enforce")
                        X.check_end("not-reached", "an earlier check answered")
                    end
                    for _, c in ipairs(later or {}) do
                        X.check_begin(c.id, c.description, modes[c.id] or "enforce")
                        X.check_end("skipped", "end-of-message check: needs the message (the milter runs it)")
                    end
                end
                answer = answer or A.dunno()
                -- almost always none: no table and no loop for them
                if tags then
                    for j = 1, #tags do answer:add_header("X-Outpost-" .. tags[j][1], tags[j][2]) end
                end
                local details = rawget(tx, "details")
                if details then answer:detail(details) end
                if link then link(tx, answer, logged) end
                return answer
            end
        end

        local function handlers(modes, tenant_modes)
            local p = { checks = checks, stats = stats, name = name }
            if #request_checks > 0 or #eom_checks == 0 then
                p.on_request = handler(request_checks, request_tx, modes, tenant_modes,
                    opts.link and record, eom_checks)
            end
            if #eom_checks > 0 then
                p.on_eom = handler(eom_checks, eom_tx, modes, tenant_modes, opts.link and settle)
            end
            if opts.link and #eom_checks > 0 then
                p.on_abort = function(ctx)
                    local released = require("outpost.transaction").release(ctx)
                    if released and released > 0 then
                        outpost.log("info", string.format(
                            "transaction aborted: %d reserved recipient(s) released", released))
                    end
                    return A.dunno()
                end
            end
            return p
        end
        local policy = handlers(base, per_tenant)
        -- For specs: the same checks under other modes, e.g.
        -- policy.with_modes({ PO6 = "log-only" }).on_request(req)
        function policy.with_modes(modes, tenant_modes)
            for id, mode in pairs(modes) do
                if not by_id[id] then error("with_modes: " .. id .. " is not a check of " .. name, 2) end
                if not MODES[mode] then error("with_modes: bad mode " .. tostring(mode), 2) end
                if mode == "tag" and by_id[id].phase ~= "eom" then
                    error("with_modes: only end-of-message checks can tag, not " .. id, 2)
                end
            end
            return handlers(modes, tenant_modes or {})
        end
        return policy
    end
end

return M
