-- make bench: a milter policy doing what a header check costs — find the
-- From header, compare its domain with the SASL user's, add a header;
-- and receive the body, as a body check would.
local A = require "outpost.action"

return {
    keep_body = 65536, -- the body comes, as for a body check (G4)
    on_eom = function(ctx)
        local from
        for _, h in ipairs(ctx.headers) do
            if h.name:lower() == "from" then from = h.value break end
        end
        local user = ctx.macros["{auth_authen}"] or ""
        local fdom = from and from:match("@([%w%.%-]+)")
        local udom = user:match("@([%w%.%-]+)$")
        if not fdom or fdom ~= udom then
            return A.reject("5.7.1", "header From %s is not yours", tostring(from))
        end
        return A.dunno():add_header("X-Outpost", "checked")
    end,
}
