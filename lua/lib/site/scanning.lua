-- site.scanning: AO6, the spam and virus check of appout's second stage, as
-- a pipeline end-of-message check (docs/services/appout.md, "AO6").
--
--   local scanning = require "site.scanning"
--   P.eom_check("AO6", "no virus and no spam", scanning.ao6(THRESHOLDS))
--   policy.keep_body = scanning.keep_body()
--
-- The message goes to clamd (outpost.scan.clamd) and to rspamd
-- (outpost.scan.rspamd), each only when configured (clamd { address },
-- rspamd { address }); a scanner that is off is skipped and said so in the
-- decision line.  Answers, in this order:
--   virus                       5xx, naming the signature (stage 1 bounces it)
--   spam at the reject level    5xx with rspamd's score and its top symbols
--   a scanner failed            4xx (the mail stays queued in stage 1)
--   spam at the tag level       the message goes on with X-Outpost-AO6: spam ...
--   clean                       the message goes on
-- Every outcome is in the decision line (detail="AO6 clamd=... rspamd=...").
local A = require "outpost.action"
local P = require "outpost.pipeline"
local scan = require "outpost.scan"
local outpost = require "outpost"

local M = {}

-- Said to stage 1: a 5xx reaches the application's sender in stage 1's
-- bounce, a 4xx keeps the mail queued (retried for up to 5 days).
local say = A.replies {
    virus = { "5.7.1", "message contains a virus (%s) and was not delivered" },
    spam = { "5.7.1", "message looks like spam (rspamd: %s, score %.1f of %.1f; %s) and was not delivered" },
    scanner_down = { "4.7.0", "message cannot be scanned now (%s); the mail stays queued and is retried" },
}

-- rspamd's actions, least to most severe.
local RANK = { ["no action"] = 0, greylist = 1, ["add header"] = 2, ["rewrite subject"] = 2,
    ["soft reject"] = 3, reject = 4 }

-- The levels, per tenant over `default`: a message is refused when
-- rspamd's action is at least reject_action or its score at least
-- reject_score, else tagged when at least tag_action or tag_score.  nil
-- or false leaves a level unused.
M.DEFAULTS = { reject_action = "reject", reject_score = false, tag_action = "add header", tag_score = false }

local function level(t, where)
    for k, v in pairs(t) do
        if M.DEFAULTS[k] == nil then error(where .. ": unknown threshold " .. tostring(k), 3) end
        if (k == "reject_action" or k == "tag_action") and v and not RANK[v] then
            error(where .. ": " .. k .. " is no rspamd action: " .. tostring(v), 3)
        end
        if (k == "reject_score" or k == "tag_score") and v and type(v) ~= "number" then
            error(where .. ": " .. k .. " must be a number", 3)
        end
    end
end

-- THRESHOLDS = { default = {...}, tenants = { tu = { reject_score = 12 }, ... } }
-- merged once, when the policy loads (a wrong name refuses the load).
function M.thresholds(spec)
    spec = spec or {}
    local base = {}
    for k, v in pairs(M.DEFAULTS) do base[k] = v end
    level(spec.default or {}, "thresholds.default")
    for k, v in pairs(spec.default or {}) do base[k] = v end
    local per = {}
    for tenant, t in pairs(spec.tenants or {}) do
        level(t, "thresholds.tenants." .. tenant)
        local m = {}
        for k, v in pairs(base) do m[k] = v end
        for k, v in pairs(t) do m[k] = v end
        per[tenant] = m
    end
    return function(tenant) return per[tenant or ""] or base end
end

-- How much of the body the milter keeps: the largest max_size of the
-- scanners configured (clamd { max_size }, rspamd { max_size }), plus one
-- byte to tell a message that was longer.
function M.max_bytes()
    local cfg = outpost.config()
    local n = 0
    for _, name in ipairs { "clamd", "rspamd" } do
        local c = cfg[name]
        if c and c.address and c.max_size > n then n = c.max_size end
    end
    return n
end
function M.keep_body() return M.max_bytes() + 1 end

-- The message as the scanners read it: the header fields the milter saw
-- (Postfix sends each without the space after the colon and with LF in
-- folded values) and the body (CRLF lines, as the milter got it).
function M.message(tx)
    local parts = {}
    for i, h in ipairs(tx.headers or {}) do
        parts[i] = h.name .. ": " .. tostring(h.value):gsub("\r?\n", "\r\n") .. "\r\n"
    end
    parts[#parts + 1] = "\r\n"
    local body, cut = tx.body or "", false
    local max = M.max_bytes()
    if max > 0 and #body > max then body, cut = body:sub(1, max), true end
    parts[#parts + 1] = body
    return table.concat(parts), cut
end

local function top_symbols(r, n)
    local names = {}
    for i = 1, math.min(n, #(r.symbols or {})) do
        local s = r.symbols[i]
        names[i] = string.format("%s(%.1f)", s.name, s.score)
    end
    return #names > 0 and table.concat(names, ",") or "no symbols"
end

local function envelope(tx)
    local ctx = tx.ctx or {}
    local rcpts = {}
    for i, r in ipairs(ctx.rcpts or {}) do rcpts[i] = r end
    local ip = tx.client
    -- Stage 2's client is stage 1's MTA (loopback), so rspamd's rules on the
    -- sending IP see a local host; the application's address is in stage
    -- 1's Received header, which rspamd reads.
    return { ip = ip ~= "" and ip or nil, helo = ctx.helo, from = tx.sender,
        user = tx.sasl_user or nil, queue_id = tx.macros and tx.macros.i, rcpts = rcpts }
end

-- The check, with the thresholds of M.thresholds(spec).
function M.ao6(spec)
    local thresholds = M.thresholds(spec)
    return function(tx)
        local message, cut = M.message(tx)
        local details = {}
        local function note(s) details[#details + 1] = s end
        local t = thresholds(tx.tenant)
        if cut then note("truncated=" .. M.max_bytes()) end

        -- clamd first: a virus is the answer whatever rspamd says
        local v, verr, vwhy = scan.clamd(message)
        if v then
            note(v.verdict == "infected" and ("clamd=infected:" .. v.signature) or "clamd=clean")
            if v.truncated then note("clamd_truncated=" .. v.sent) end
        else
            note(string.format("clamd=%s:%s", verr, (tostring(vwhy):gsub("%s", "_"))))
        end
        local s, serr, swhy
        if not (v and v.verdict == "infected") then
            s, serr, swhy = scan.rspamd(message, envelope(tx))
            if s then
                note(string.format("rspamd=%s/%.2f/%.2f", s.action:gsub(" ", "_"), s.score, s.required))
                note("symbols=" .. top_symbols(s, 5))
            else
                note(string.format("rspamd=%s:%s", serr, (tostring(swhy):gsub("%s", "_"))))
            end
        end
        P.detail(tx, "AO6 " .. table.concat(details, " "))

        if v and v.verdict == "infected" then
            return say.virus(v.signature):tag("virus " .. v.signature)
        end
        if s then
            local rank = RANK[s.action] or 0
            local function at(act, score)
                return (act and rank >= RANK[act]) or (score and s.score >= score)
            end
            if at(t.reject_action, t.reject_score) then
                return say.spam(s.action, s.score, s.required, top_symbols(s, 3))
                    :tag(string.format("spam %s score %.1f of %.1f", s.action, s.score, s.required))
            end
        end
        -- a scanner that is configured and did not answer: try again later
        if (not v and verr ~= "off") or (not s and serr and serr ~= "off") then
            local which = (not v and verr ~= "off") and tostring(vwhy) or tostring(swhy)
            return say.scanner_down(which)
        end
        if s then
            local rank = RANK[s.action] or 0
            if (t.tag_action and rank >= RANK[t.tag_action]) or (t.tag_score and s.score >= t.tag_score) then
                return A.dunno():add_header("X-Outpost-AO6", string.format(
                    "spam %s score %.1f of %.1f; %s", s.action, s.score, s.required, top_symbols(s, 3)))
                    :tag("spam")
            end
        end
        return nil
    end
end

return M
