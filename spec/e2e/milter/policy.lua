-- A milter policy for the end-to-end test: every phase does something the
-- test can see.
local A = require "outpost.action"
local outpost = require "outpost"

local function header(ctx, name)
    for _, h in ipairs(ctx.headers) do
        if h.name:lower() == name then return h.value end
    end
end

return {
    keep_body = 4096,

    on_mail = function(ctx)
        ctx.msg.sender = ctx.sender
        ctx.conn.messages = (ctx.conn.messages or 0) + 1
        if ctx.sender == "blocked@example.org" then
            return A.reject("5.7.1", "sender %s is blocked", ctx.sender)
        end
        return A.dunno()
    end,

    on_rcpt = function(ctx)
        if ctx.rcpt == "nobody@example.net" then
            return A.reject("5.1.1", "no such user %s", ctx.rcpt)
        end
        return A.dunno()
    end,

    on_eom = function(ctx)
        if ctx.msg.sender ~= ctx.sender then error("the message's state was lost") end
        local body = ctx.body
        if body:find("SLEEP", 1, true) then outpost.sleep(5) end
        -- longer than the progress interval (5 s), shorter than the slow service's deadline
        if body:find("SLOW", 1, true) then outpost.sleep(6.5) end
        if body:find("RAISE", 1, true) then error("boom") end
        if body:find("HOLD", 1, true) then return A.hold("suspicious body") end
        if body:find("TEMPFAIL", 1, true) then return A.defer("4.7.0", "try again") end
        local from, user = header(ctx, "from"), ctx.macros["{auth_authen}"]
        if from and user and not from:find(user, 1, true) then
            return A.reject("5.7.1", "header From %s is not yours", from)
        end
        return A.dunno()
            :add_header("X-Outpost", string.format("%d rcpts, message %d", #ctx.rcpts, ctx.conn.messages))
            :change_header("Subject", 1, "[checked] " .. (header(ctx, "subject") or ""))
    end,

    on_abort = function(ctx)
        outpost.log("info", "milter test: aborted message from " .. tostring(ctx.msg.sender))
    end,
}
