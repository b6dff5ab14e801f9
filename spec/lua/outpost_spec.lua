-- outpost.sleep is a real primitive on a libuv timer: it yields the
-- coroutine busted runs in, and the engine's loop resumes it.
local outpost = require "outpost"

describe("outpost.sleep", function()
    it("waits on the event loop and returns true", function()
        local t0 = outpost.now()
        assert.is_true(outpost.sleep(0.05))
        local waited = outpost.now() - t0
        assert.is_true(waited >= 0.045, "waited only " .. waited)
        assert.is_true(waited < 1, "waited " .. waited)
    end)

    it("returns at once for zero", function()
        assert.is_true(outpost.sleep(0))
    end)

    it("can wait several times in one test and across pcall", function()
        for _ = 1, 3 do assert.is_true(outpost.sleep(0.01)) end
        local ok, v = pcall(outpost.sleep, 0.01)
        assert.is_true(ok)
        assert.is_true(v)
    end)

    it("refuses bad arguments", function()
        assert.has_error(function() outpost.sleep(-1) end)
        assert.has_error(function() outpost.sleep("soon") end)
        assert.has_error(function() outpost.sleep(1e9) end)
    end)

    it("refuses to wait inside a table.sort callback", function()
        local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b)
            outpost.sleep(0.01)
            return a < b
        end)
        assert.is_false(ok)
        assert.matches("cannot wait here", err)
    end)

    it("refuses to wait inside a coroutine of its own", function()
        local co = coroutine.create(function() return outpost.sleep(0.01) end)
        local ok, err = coroutine.resume(co)
        assert.is_false(ok)
        assert.matches("cannot wait here", err)
    end)
end)

describe("outpost.domain", function()
    it("normalises case, the trailing dot and IDN", function()
        assert.equal("example.org", outpost.domain("Example.ORG."))
        assert.equal("xn--bcher-kva.example", outpost.domain("b\195\188cher.example"))
    end)
    it("answers nil, badname for impossible names", function()
        local v, err = outpost.domain("exa mple.org")
        assert.is_nil(v)
        assert.equal("badname", err)
        assert.same({ nil, "badname" }, { outpost.domain("a..b") })
    end)
end)
