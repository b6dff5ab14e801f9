-- transaction: the policy requests and the milter session of one SMTP
-- transaction, linked (docs/milter.md, "Correlation").
--
-- Postfix asks the policy service at RCPT (one request per recipient, all
-- with the same `instance`; `queue_id` once the queue file is open, i.e.
-- from the second RCPT on), DATA and END-OF-MESSAGE, and its milter sees
-- the same transaction with the queue id in the macro `i` from DATA on.
-- Both know the client's address and port (one SMTP connection) and the
-- envelope sender.  So an entry of outpost.txnlink is written under
--   i:<instance>  q:<queue id>  e:<client>|<port>|<sender>
-- by the policy side, and read by the milter under q:<i> or the envelope
-- key.  The envelope key alone is enough when the queue id is not known
-- yet (a one-recipient message: Postfix opens the queue file after the
-- first RCPT's policy answer); a client's port makes it one connection's,
-- and a connection's transactions come one after another: a new instance
-- takes the envelope key over (see record).
--
--   transaction.record(attrs, fields)  policy side: fields for this transaction
--   transaction.of_request(attrs)      policy side: what was recorded so far
--   transaction.of_message(ctx)        milter side: the fields, or nil
--   transaction.note_message(ctx, fields) milter side: add fields
--   transaction.release(ctx)           milter on_abort: give back the counts
--                                      reserved under the transaction's instance
--   transaction.commit(ctx [, keep])   milter on_eom: keep them
local txnlink = require "outpost.txnlink"
local limit = require "outpost.limit"

local M = {}

local function nonempty(s) return s ~= nil and s ~= "" end

local function envelope_key(client, port, sender)
    if not nonempty(client) then return false end
    return "e:" .. client .. "|" .. tostring(port or "") .. "|" .. string.lower(sender or "")
end

function M.request_keys(attrs)
    return {
        nonempty(attrs.instance) and "i:" .. attrs.instance or false,
        nonempty(attrs.queue_id) and "q:" .. attrs.queue_id or false,
        envelope_key(attrs.client_address, attrs.client_port, attrs.sender),
    }
end

function M.message_keys(ctx)
    local m, c = ctx.macros or {}, ctx.client or {}
    return {
        nonempty(m.i) and "q:" .. m.i or false,
        envelope_key(c.address, c.port, ctx.sender),
    }
end

-- fields: name -> string/number/boolean.  The transaction's own names
-- (instance, queue_id, client, sasl_user, sender) are always written.
function M.record(attrs, fields)
    local keys = M.request_keys(attrs)
    local inst, env = keys[1], keys[3]
    if inst and env and not txnlink.get({ inst }) then
        -- the first request of a transaction: the envelope key of an
        -- earlier one on this connection (same sender) is not ours
        txnlink.unlink(env)
    end
    local all = {
        instance = attrs.instance or "",
        client = attrs.client_address or "",
        sasl_user = attrs.sasl_username or "",
        sender = attrs.sender or "",
    }
    if nonempty(attrs.queue_id) then all.queue_id = attrs.queue_id end
    for k, v in pairs(fields or {}) do all[k] = v end
    return txnlink.put(keys, all)
end

function M.of_request(attrs)
    return txnlink.get(M.request_keys(attrs))
end

function M.of_message(ctx)
    return txnlink.get(M.message_keys(ctx))
end

function M.note_message(ctx, fields)
    return txnlink.put(M.message_keys(ctx), fields)
end

-- The transaction ended without the message (RSET, QUIT, a refused
-- recipient or DATA, or the milter's own refusal): what the policy
-- reserved at RCPT goes back now, not at reservation_timeout.  After the
-- policy committed (DATA or END-OF-MESSAGE) nothing is left to release,
-- so Postfix's ABORT after every message is harmless.  Returns the
-- number released, or nil when the transaction is not known.
function M.release(ctx)
    local t = M.of_message(ctx)
    if not (t and nonempty(t.instance)) then return nil end
    local released = limit.release(t.instance)
    M.note_message(ctx, { released = released or 0 })
    return released
end

function M.commit(ctx, keep)
    local t = M.of_message(ctx)
    if not (t and nonempty(t.instance)) then return nil end
    return limit.commit(t.instance, keep)
end

return M
