-- spec/e2e/test_logs_postfix.sh: a policy that defers a mail where Postfix
-- has its queue id, so the test can find the mail by that id in Postfix's
-- log and then in outpostd's decision lines.  It logs the queue_id Postfix
-- sent at each protocol_state (and the milter's i macro at each phase),
-- which is what docs/operations.md reports.
local A = require "outpost.action"
local P = require "outpost.pipeline"
local outpost = require "outpost"

local policy = P.service("qid") {
    P.check("QD1", "what Postfix sends; later@ waits; defer@'s message waits", function(tx)
        outpost.log("notice", string.format("qid policy: %s queue_id=%s rcpt=%s", tx.stage,
            tx.attrs.queue_id or "", tx.attrs.recipient or ""))
        if tx.stage == "RCPT" and tx.recipient:match("^later@") then
            return A.defer("4.7.1", "recipient %s must wait; try again later", tx.recipient)
        end
        if tx.stage == "END-OF-MESSAGE" and tx.sender == "defer@example.org" then
            return A.defer("4.7.1", "message from %s held back; try again later", tx.sender)
        end
    end),
}

-- the milter: a handler per phase, each logs the i macro and lets the mail on
local function milter(phase)
    return function(ctx)
        outpost.log("notice", string.format("qid milter: %s i=%s", phase, ctx.macros.i or ""))
        return A.dunno()
    end
end
for _, phase in ipairs({ "mail", "rcpt", "data", "eoh", "eom" }) do
    policy["on_" .. phase] = milter(phase)
end
return policy
