-- outpost.limit against the real counters service of the harness config
-- (limit spec_rcpt: 5 per hour, max_override 10, reservation_timeout 2s),
-- once on RocksDB (outpost.conf) and once on the harness's Redis
-- (outpost-redis.conf: spec/run-all.sh runs this file with both).
-- `outpostd test` gives the specs a private store; still, every test counts a
-- subject of its own so that tests do not depend on each other.
local limit = require "outpost.limit"
local outpost = require "outpost"

local run = string.format("%d-%d", os.time(), math.floor(outpost.now() * 1000) % 100000)
local n = 0
local function subject()
    n = n + 1
    return string.format("spec%d-%s@example.org", n, run)
end

describe("outpost.limit", function()
    it("adds up to the maximum, then says no with when the next slot frees", function()
        local s = subject()
        local t0 = os.time()
        for i = 1, 5 do
            local r = assert(limit.add("spec_rcpt", s))
            assert.is_true(r.ok)
            assert.equal(i, r.used)
            assert.equal(5 - i, r.remaining)
        end
        local r = assert(limit.add("spec_rcpt", s))
        assert.is_false(r.ok)
        assert.same({ 5, 0, 5, 3600, 60, "default", "spec_rcpt", s },
            { r.used, r.remaining, r.max, r.window, r.resolution, r.source, r.limit, r.subject })
        -- the minute of the first add leaves the window an hour later
        assert.is_true(r.next_free >= t0 - t0 % 60 + 3600 and r.next_free <= t0 - t0 % 60 + 3660,
            "next_free " .. tostring(r.next_free))
    end)

    it("check changes nothing", function()
        local s = subject()
        local r = limit.check("spec_rcpt", s, 5)
        assert.is_true(r.ok)
        assert.equal(0, r.used)
        assert.is_false(limit.check("spec_rcpt", s, 6).ok)
        assert.is_nil(limit.check("spec_rcpt", s, 6).next_free) -- 6 never fit into 5
        assert.equal(0, limit.check("spec_rcpt", s).used)
    end)

    it("takes n at once, all or nothing", function()
        local s = subject()
        assert.is_true(limit.add("spec_rcpt", s, 4).ok)
        local r = limit.add("spec_rcpt", s, 2)
        assert.is_false(r.ok)
        assert.equal(4, r.used)
    end)

    it("takes a directory maximum, capped at max_override", function()
        local s = subject()
        local r = limit.check("spec_rcpt", s, 1, { max = 8 })
        assert.equal(8, r.max)
        assert.equal("directory", r.source)
        assert.equal(10, limit.check("spec_rcpt", s, 1, { max = 1000 }).max)
        assert.equal(5, limit.check("spec_rcpt", s, 1, {}).max)
    end)

    it("reserve counts at once, release gives the slots back", function()
        local s, inst = subject(), "spec." .. run .. ".1"
        for _ = 1, 5 do assert.is_true(limit.reserve("spec_rcpt", s, inst).ok) end
        assert.is_false(limit.reserve("spec_rcpt", s, inst .. "x").ok)
        assert.equal(5, limit.release(inst))
        assert.equal(0, limit.check("spec_rcpt", s).used)
    end)

    it("commit keeps what was reserved, or what Postfix accepted", function()
        local s, inst = subject(), "spec." .. run .. ".2"
        limit.reserve("spec_rcpt", s, inst, 3)
        local kept, released = limit.commit(inst, 2)
        assert.equal(2, kept)
        assert.equal(1, released)
        assert.equal(2, limit.check("spec_rcpt", s).used)
        assert.equal(0, limit.release(inst)) -- committed is final
        limit.reserve("spec_rcpt", s, inst .. "b", 1)
        assert.equal(1, (limit.commit(inst .. "b")))
        assert.equal(3, limit.check("spec_rcpt", s).used)
    end)

    it("releases a reservation nobody committed after reservation_timeout", function()
        local s, inst = subject(), "spec." .. run .. ".3"
        limit.reserve("spec_rcpt", s, inst, 5)
        assert.equal(5, limit.check("spec_rcpt", s).used)
        local t0 = outpost.now()
        while limit.check("spec_rcpt", s).used > 0 and outpost.now() - t0 < 6 do
            outpost.sleep(0.25)
        end
        assert.equal(0, limit.check("spec_rcpt", s).used)
        assert.is_true(outpost.now() - t0 >= 1, "released too early")
    end)

    it("raises on misuse", function()
        assert.has_error(function() limit.add("no_such_limit", "x") end,
            "outpost.limit: no limit 'no_such_limit' in the configuration")
        assert.has_error(function() limit.add("spec_rcpt") end)
        assert.has_error(function() limit.add("spec_rcpt", "") end)
        assert.has_error(function() limit.add("spec_rcpt", "a\0b") end)
        assert.has_error(function() limit.add("spec_rcpt", "x", -1) end)
        assert.has_error(function() limit.add("spec_rcpt", "x", 1.5) end)
        assert.has_error(function() limit.add("spec_rcpt", "x", 1, { max = "many" }) end)
        assert.has_error(function() limit.reserve("spec_rcpt", "x") end)
        assert.has_error(function() limit.commit() end)
    end)

    -- RocksDB answers at once, even inside a sort callback; Redis waits for
    -- its server, so there it raises like dns.* (docs/limits.md).
    it("waits only with a backend that may: not inside a sort callback", function()
        local s = subject()
        local ok, err = pcall(table.sort, { 3, 1, 2 }, function(a, b)
            limit.check("spec_rcpt", s)
            return a < b
        end)
        if limit.backend() == "rocksdb" then
            assert.is_true(ok)
        else
            assert.equal("redis", limit.backend())
            assert.is_false(ok)
            assert.matches("cannot wait here", err)
        end
    end)
end)
