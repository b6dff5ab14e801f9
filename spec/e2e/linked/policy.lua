-- spec/e2e/test_milter_linked.sh: one service answers a Postfix's policy
-- requests (RCPT, DATA) and its milter (end of message), linked per
-- transaction (P.service link = true, lua/lib/outpost/transaction.lua).
local A = require "outpost.action"
local P = require "outpost.pipeline"
local limit = require "outpost.limit"
local outpost = require "outpost"

local policy = P.service("linked", { link = true }) {
    P.check("XL1", "each recipient is reserved for the transaction, committed at DATA", function(tx)
        if tx.stage == "RCPT" then
            local r = limit.reserve("e2e_rcpt", tx.sender, tx.instance, 1)
            tx.notes.used = r and r.used or "unavailable"
            outpost.log("notice", string.format("linked policy: RCPT instance=%s queue_id=%s rcpt=%s",
                tx.instance, tx.attrs.queue_id or "", tx.recipient))
            if tx.recipient:match("^refused@") then return A.reject("5.7.1", "refused by the policy") end
        elseif tx.stage == "DATA" then
            limit.commit(tx.instance, tonumber(tx.attrs.recipient_count))
        end
    end),
    P.check("XL2", "log-only here: recipients in example.net", function(tx)
        if tx.recipient:match("@example%.net$") then return A.reject("5.7.1", "would be refused") end
    end),
    P.eom_check("XL3", "the message carries what the policy decided for it", function(tx)
        local p = tx.policy
        if not p then return A.defer("4.3.0", "no policy record for this message") end
        local parts = {}
        for k, v in pairs(p) do parts[#parts + 1] = k .. "=" .. v end
        table.sort(parts)
        local text = table.concat(parts, "; ")
        outpost.log("notice", "linked milter: " .. text)
        local macros = {}
        for k, v in pairs(tx.macros) do macros[#macros + 1] = k .. "=" .. v end
        table.sort(macros)
        outpost.log("notice", "linked macros: " .. table.concat(macros, " "))
        -- held, so the test can read the header in Postfix's hold queue
        return A.hold("linked test"):add_header("X-Outpost-Policy", text)
    end),
}

-- SMFIR_SETSYMLIST: exactly these macros per stage (Postfix's defaults for
-- connect, j {daemon_name} {daemon_addr} v _, are replaced)
policy.macros = {
    connect = { "j", "{client_port}", "{daemon_port}" },
    mail = { "{auth_authen}", "{mail_addr}" },
    data = { "i" },
    eom = { "i" },
}
return policy
