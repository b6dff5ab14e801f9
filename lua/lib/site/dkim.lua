-- site.dkim: MO8, mail from the institution's own domains through mailout
-- only with a valid DKIM signature of the institution's own systems
-- (docs/services/mailout.md, "MO8").
--
--   local dkim = require "site.dkim"
--   policy.on_eoh = dkim.on_eoh    -- the verifier starts: key lookups go out
--   policy.on_body = dkim.on_body  -- each body chunk is hashed, not kept
--   dkim.mo8(tx, say)              -- at end of message (P.eom_check)
--
-- The lists (conf/lists/, read when the generation loads):
--   dkim_institution_domains  the domains the institution is authoritative for
--   dkim_signing_domains      the d= of the institution's signers (Exchange, postout)
-- Both hold organisational domains: a name is in a list when it is a
-- listed domain or below one (DMARC's relaxed alignment, with the list
-- standing in for the public suffix list).
local A = require "outpost.action"
local outpost = require "outpost"
local lists = require "outpost.lists"
local verifier = require "outpost.dkim"
local address = require "site.address"
local rfc5322 = require "message.rfc5322"

local M = {}

M.INSTITUTION = lists.domains("dkim_institution_domains")
M.SIGNING = lists.domains("dkim_signing_domains")

-- The listed domain domain is, or is below; nil.
function M.under(domain, set)
    local d = outpost.domain(domain or "")
    while d and d ~= "" do
        if set[d] then return d end
        d = d:match("^[^.]+%.(.+)$")
    end
    return nil
end

-- The milter's handlers: the verifier lives in ctx.msg for one message.
function M.on_eoh(ctx)
    local v = verifier.verifier()
    for _, h in ipairs(ctx.headers or {}) do v:header(h.name, h.value) end
    v:eoh()
    ctx.msg.dkim = v
    return A.dunno()
end

function M.on_body(ctx)
    local v = ctx.msg and ctx.msg.dkim
    if v then v:body(ctx.chunk) end
    return A.dunno()
end

-- The verdicts of tx's message: the streamed verifier's, or (a spec, a
-- policy without on_eoh) one fed now from tx.headers and tx.body.
function M.verdicts(tx)
    local v = tx.ctx and tx.ctx.msg and tx.ctx.msg.dkim
    if not v then
        v = verifier.verifier()
        for _, h in ipairs(tx.headers or {}) do v:header(h.name, h.value) end
        v:eoh()
        if tx.body and tx.body ~= "" then v:body(tx.body) end
    end
    return v:result()
end

-- The sender domains MO8 looks at, in order: every mailbox of the From
-- header (what the recipient sees, DMARC's choice), then the envelope
-- sender's when it differs (what bounces, SPF and MO5/MO9 go by).  A list
-- of {domain, why}, and the error of a From that cannot be read: that
-- counts as claiming the institution, so garbling it is no way around MO8.
local function sender_domains(tx)
    local out, seen, unreadable = {}, {}, nil
    for _, h in ipairs(tx.headers or {}) do
        if h.name:lower() == "from" then
            local list, err = rfc5322.parse_address_list(h.value)
            if not list then unreadable = err end
            for _, m in ipairs(list or {}) do
                local a = address.parse(m.address)
                if a and a.domain and not seen[a.domain] then
                    seen[a.domain] = true
                    out[#out + 1] = { a.domain, "header From" }
                end
            end
        end
    end
    local s = tx.sender and tx.sender ~= "" and address.parse(tx.sender)
    if s and s.domain and not seen[s.domain] then out[#out + 1] = { s.domain, "envelope sender" } end
    return out, unreadable
end

-- A summary of the verdicts for the log: "d=inst.test s=sel pass, ..."
function M.summary(verdicts)
    local parts = {}
    for _, v in ipairs(verdicts) do
        parts[#parts + 1] = string.format("d=%s s=%s a=%s %s%s", v.d, v.s, v.a, v.result,
            v.reason ~= "" and " (" .. v.reason .. ")" or "")
    end
    return #parts > 0 and table.concat(parts, ", ") or "no signature"
end

-- The Authentication-Results header (RFC 8601) of the verdicts: its value,
-- "AUTHSERV-ID; dkim=pass header.d=D header.s=S header.a=A; ..." or
-- "AUTHSERV-ID; dkim=none" for an unsigned message.
function M.results_header(verdicts, authserv_id)
    local parts = { authserv_id }
    for _, v in ipairs(verdicts) do
        parts[#parts + 1] = string.format("dkim=%s%s header.d=%s header.s=%s header.a=%s", v.result,
            v.reason ~= "" and " (" .. v.reason .. ")" or "", v.d ~= "" and v.d or "unknown",
            v.s ~= "" and v.s or "unknown", v.a ~= "" and v.a or "unknown")
    end
    if #parts == 1 then parts[2] = "dkim=none" end
    return table.concat(parts, "; ")
end

-- Wraps a policy's on_eom so that a message that goes on carries the
-- verdicts of its streamed verifier on an Authentication-Results header
-- (the verdicts are computed once: MO8 and this share them); the
-- authserv-id is settings.authserv_id, read at each message.
local GOES_ON = { dunno = true, ok = true, warn = true, info = true, hold = true }
function M.with_results_header(on_eom, settings)
    return function(ctx)
        local authserv_id = settings.authserv_id
        local answer = on_eom(ctx)
        local v = ctx.msg and ctx.msg.dkim
        if v and A.is_action(answer) then
            local verdicts = v:result()
            -- the decision line's detail="...; dkim: ..." (docs/milter.md, "Logs")
            local d = rawget(answer, "detail")
            answer:detail((d and d .. "; " or "") .. "dkim: " .. M.summary(verdicts))
            if GOES_ON[answer.kind] then
                -- an Authentication-Results of our authserv-id that came
                -- with the message is forged (RFC 8601 5): deleted
                local n = 0
                for _, h in ipairs(ctx.headers or {}) do
                    if h.name:lower() == "authentication-results" then
                        n = n + 1
                        local id = h.value:match("^%s*([^%s;]+)")
                        if id and id:lower() == authserv_id:lower() then
                            answer:change_header("Authentication-Results", n, "")
                        end
                    end
                end
                answer:add_header("Authentication-Results", M.results_header(verdicts, authserv_id))
            end
        end
        return answer
    end
end

-- MO8.  say: the policy's replies MO8 (5xx: domain, why, signatures) and
-- MO8_dns (4xx).  nil when the message may go.
function M.mo8(tx, say, institution, signing)
    institution, signing = institution or M.INSTITUTION, signing or M.SIGNING
    local doms, unreadable = sender_domains(tx)
    local claimed, why
    for _, dw in ipairs(doms) do
        if M.under(dw[1], institution) then claimed, why = dw[1], dw[2]; break end
    end
    if not claimed and unreadable then claimed, why = "(unreadable From)", "header From: " .. unreadable end
    if not claimed then return nil end
    local verdicts = M.verdicts(tx)
    local temp = false
    for _, v in ipairs(verdicts) do
        if M.under(v.d, signing) then
            if v.result == "pass" then
                outpost.log("notice", string.format("MO8: %s %s signed by d=%s s=%s a=%s: pass",
                    why, claimed, v.d, v.s, v.a))
                return nil
            end
            if v.result == "temperror" then temp = true end
        end
    end
    outpost.log("notice", string.format("MO8: %s %s: %s", why, claimed, M.summary(verdicts)))
    if temp then return say.MO8_dns(claimed) end
    return say.MO8(claimed, why, M.summary(verdicts))
end

return M
