-- The sandbox policies run in (engine/lua/sandbox.lua).
local sandbox = require "outpost.sandbox"
local fixtures = "spec/lua/fixtures/"

describe("the policy sandbox", function()
    it("loads a policy and returns its on_request", function()
        local on_request = sandbox.load_policy(OUTPOST_TEST.lua_dir .. "/policies/dunno.lua").on_request
        assert.equal("function", type(on_request))
        assert.equal("DUNNO", on_request({ attrs = {} }).text)
    end)

    it("reports a syntax error with file and line", function()
        local ok, err = pcall(sandbox.load_policy, fixtures .. "syntax_error_policy.lua")
        assert.is_false(ok)
        assert.matches("syntax_error_policy.lua:%d+:", err)
    end)

    it("refuses a policy that returns neither a table nor a function", function()
        local ok, err = pcall(sandbox.load_policy, fixtures .. "bad_return_policy.lua")
        assert.is_false(ok)
        assert.matches("must return a table of handlers", err)
    end)

    it("gives no io, no os.execute, no load, no debug", function()
        local ok, err = pcall(sandbox.load_policy, fixtures .. "io_policy.lua")
        assert.is_false(ok)
        assert.matches("undefined global 'io'", err)
    end)

    it("freezes globals after loading, so requests cannot leak state", function()
        local on_request = sandbox.load_policy(fixtures .. "globals_policy.lua").on_request
        sandbox.freeze()
        local ok, err = pcall(on_request, { attrs = {} })
        assert.is_false(ok)
        assert.matches("assignment to global 'counter' after loading", err)
    end)

    it("keeps string, table, math and the outpost modules read-only for requests", function()
        local on_request = sandbox.load_policy(fixtures .. "shared_tables_policy.lua").on_request
        for _, what in ipairs { "string", "strmeta", "table", "math", "randomseed", "outpost",
            "action", "rawset", "insert", "setmeta", "detail", "derive", "txfield" } do
            local ok, err = pcall(on_request, { attrs = { what = what } })
            assert.is_false(ok, what)
            err = tostring(err)
            assert.is_truthy(err:find("read%-only") or err:find("protected metatable")
                or err:find("randomseed' %(a nil value%)"), what .. ": " .. err)
        end
        assert.equal("ABC", ("abc"):upper())
        assert.equal("gh", table.concat { "g", "h" })
        assert.is_nil(rawget(math, 1))
        assert.equal("function", type(sandbox.require("outpost.action").warn))
    end)

    it("refuses a handler name with a typo", function()
        local ok, err = pcall(sandbox.load_policy, fixtures .. "typo_handler_policy.lua")
        assert.is_false(ok)
        assert.matches("unknown handler 'on_rcp'", err)
    end)

    it("loads libraries through the same sandbox", function()
        local env_require = sandbox.require
        local A = env_require "outpost.action"
        assert.equal("DUNNO", A.dunno().text)
        assert.has_error(function() env_require "no.such.module" end)
    end)
end)
