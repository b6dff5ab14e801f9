-- make bench-parts, MO8: the mailout policy's DKIM verification alone —
-- the verifier fed at end of headers and per body chunk (site.dkim), the
-- verdict at end of message; a header added when an institution signature
-- passed, so the bench's check can count them.
local A = require "outpost.action"
local dkim = require "site.dkim"

return {
    on_eoh = dkim.on_eoh,
    on_body = dkim.on_body,
    on_eom = function(ctx)
        for _, v in ipairs(ctx.msg.dkim:result()) do
            if v.result == "pass" and dkim.under(v.d, dkim.SIGNING) then
                return A.dunno():add_header("X-Outpost-MO8", "pass d=" .. v.d)
            end
        end
        return A.reject("5.7.1", "no valid institution signature")
    end,
}
