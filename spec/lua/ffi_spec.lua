-- The FFI fast paths of the outpost.* modules against their classic twins
-- (engine/lua/lua_api_ffi.h): the same inputs, the same answers and the
-- same errors.  Both implementations sit in the registry's "outpost.ffi"
-- table whichever one the modules use; spec/c/test_lua_ffi.c covers
-- req.attrs and which one a state picks.
local outpost = require "outpost"
local netset = require "outpost.netset"
local reg = debug.getregistry()["outpost.ffi"]

-- Every result (as a list, so a missing one shows) or the error, called the
-- way a policy calls: from a Lua line of its own.
local function outcome(f, ...)
    local args = { n = select("#", ...), ... }
    local r = { pcall(function() local a, b, c = f(unpack(args, 1, args.n)) return a, b, c end) }
    return r
end

local function alike(name, inputs)
    local fast, classic = reg.fast[name], reg.classic[name]
    assert.is_function(fast)
    assert.is_function(classic)
    assert.are_not.equal(fast, classic)
    -- 100 rounds: the JIT (on in the test host) compiles the fast one after
    -- 56, so the compiled code is compared too.
    for round = 1, 100 do
        for _, args in ipairs(inputs) do
            local got, want = outcome(fast, unpack(args, 1, args.n)), outcome(classic, unpack(args, 1, args.n))
            if round == 1 or not pcall(assert.same, want, got) then
                assert.same(want, got, ("%s, round %d, input %s"):format(name, round, tostring(args[1])))
            end
        end
    end
end

local function pack(...) return { n = select("#", ...), ... } end

describe("the FFI fast paths", function()
    it("are the ones the modules use (the JIT is on in the test host)", function()
        if os.getenv("OUTPOST_LUA_FFI") == "off" then
            assert.is_false(reg.active)
            assert.equal(reg.classic["outpost.domain"], outpost.domain)
        else
            assert.is_true(reg.active)
            assert.equal(reg.fast["outpost.domain"], outpost.domain)
        end
    end)

    it("outpost.domain answers as the classic one", function()
        local long = ("a"):rep(63)
        -- Not compared: a call with no argument at all, which the classic one
        -- calls "no value" and the fast one (it has a named parameter) "nil".
        alike("outpost.domain", {
            pack("example.org"), pack("Example.ORG."), pack("example.org."), pack("EXAMPLE.ORG"),
            pack("b\195\188cher.example"), pack("xn--bcher-kva.example"), pack("exa mple.org"),
            pack("a..b"), pack(""), pack("."), pack("a\0b.example"), pack("-a.example"),
            pack(long .. "." .. long .. "." .. long .. "." .. long:sub(1, 61)),
            pack(long .. "." .. long .. "." .. long .. "." .. long),
            pack(("x"):rep(2000)), pack(42), pack(1.5), pack(nil), pack({}), pack(true),
        })
    end)

    it("outpost.domain hands back the very string it got when that is the normal form", function()
        local s = "already.normal.example"
        assert.equal(s, reg.fast["outpost.domain"](s))
        assert.equal("upper.example", reg.fast["outpost.domain"]("UPPER.example"))
    end)

    it("netset:match answers as the classic one", function()
        local set = netset.new()
            :add("10.0.0.0/8", "campus")
            :add("10.1.0.0/16", "area-a")
            :add("192.0.2.7", "")
            :add("2001:db8::/32", "campus6")
            :add("0.0.0.0/0")
        local empty = netset.new()
        alike("netset.match", {
            pack(set, "10.1.2.3"), pack(set, "10.2.0.1"), pack(set, "2001:db8::25"),
            pack(set, "192.0.2.7"), pack(set, "192.0.2.8"), pack(set, "2001:db9::1"),
            pack(set, "::ffff:10.1.2.3"), pack(set, "no address"), pack(set, ""),
            pack(set, "10.1.2.3\0junk"), pack(set, 10), pack(set, nil), pack(set, {}),
            pack(empty, "10.1.2.3"), pack({}, "10.1.2.3"), pack(nil, "10.1.2.3"),
            pack(setmetatable({}, { __metatable = "outpost.netset" }), "10.1.2.3"),
            pack(io.stdout, "10.1.2.3"),
        })
    end)

    it("netset:match names the caller's line in its errors, as the classic one does", function()
        local set = netset.new()
        local ok, err = pcall(function() local x = set:match({}) return x end)
        assert.is_false(ok)
        assert.matches("ffi_spec.lua:%d+: bad argument #1 to 'match'", err)
    end)

    describe("limit.check, add and reserve", function()
        local limit = require "outpost.limit"
        local run = string.format("%d-%d", os.time(), math.floor(outpost.now() * 1000) % 100000)
        local seq = 0
        local function subject()
            seq = seq + 1
            return string.format("ffi%d-%s@example.org", seq, run)
        end
        local rocks = limit.backend() == "rocksdb"

        -- The same calls on two fresh subjects, one through each
        -- implementation, interleaved; the answers must be the same but
        -- for the subject.  next_free may differ by a bucket when a minute
        -- ends between the two first adds.
        local function twin(calls)
            local sa, sb = subject(), subject()
            for i, c in ipairs(calls) do
                local fast, classic = reg.fast["limit." .. c[1]], reg.classic["limit." .. c[1]]
                -- "$S": the side's subject; "$N": a number of its own, a
                -- subject that reaches the classic function as a number
                local function args(s, num)
                    local a = { n = c.n }
                    for k = 2, c.n do
                        a[k - 1] = (c[k] == "$S" and s) or (c[k] == "$N" and num) or c[k]
                    end
                    return a
                end
                local aa, ab = args(sa, os.time() * 10), args(sb, os.time() * 10 + 1)
                local got = { pcall(fast, unpack(aa, 1, c.n - 1)) }
                local want = { pcall(classic, unpack(ab, 1, c.n - 1)) }
                for _, r in ipairs { got, want } do
                    if type(r[2]) == "table" then
                        r[2].subject = r[2].subject and "$S" -- or the "$N" as a string
                        if r[2].next_free then r[2].next_free = math.floor(r[2].next_free / 120) end
                    elseif type(r[2]) == "string" then
                        r[2] = r[2]:gsub("ffi%d+%-", "ffiN-")
                    end
                end
                assert.same(want, got, "call " .. i .. ": " .. c[1])
            end
        end
        local function call(...) return { n = select("#", ...), ... } end

        it("answer as the classic ones, up to the maximum and past it", function()
            local calls = {}
            for _ = 1, 7 do calls[#calls + 1] = call("add", "spec_rcpt", "$S") end
            calls[#calls + 1] = call("check", "spec_rcpt", "$S", 6)
            calls[#calls + 1] = call("check", "spec_rcpt", "$S", 0)
            calls[#calls + 1] = call("check", "spec_rcpt", "$S", 1, { max = 8 })
            calls[#calls + 1] = call("check", "spec_rcpt", "$S", 1, { max = 1000 })
            calls[#calls + 1] = call("check", "spec_rcpt", "$S", 1, {})
            calls[#calls + 1] = call("add", "spec_rcpt", "$S", 2, { max = 8.5 })
            twin(calls)
            local r = {}
            for i = 1, 4 do r[i] = call("reserve", "spec_rcpt", "$S", "$S", i) end
            r[5] = call("reserve", "spec_rcpt", "$S", "$S", 1, { max = 10 })
            r[6] = call("check", "spec_rcpt", "$S")
            twin(r)
        end)

        it("raise and convert as the classic ones", function()
            twin {
                call("add", "spec_rcpt", "$S", 2.5), call("add", "spec_rcpt", "$S", -1),
                call("add", "spec_rcpt", "$S", "2"), call("add", "spec_rcpt", "$S", 1e10),
                call("add", "no_such_limit", "$S"), call("add", "", "$S"),
                call("add", "spec_rcpt", ""), call("add", "spec_rcpt", ("x"):rep(513)),
                call("add", "spec_rcpt", "a\0b"), call("add", "spec_rcpt", "$N"),
                call("add", "spec_rcpt", "$S", 1, "opts"), call("add", "spec_rcpt", "$S", 1, { max = -1 }),
                call("add", "spec_rcpt", "$S", 1, { max = "7" }), call("add", "spec_rcpt", "$S", 1, { max = 0/0 }),
                call("reserve", "spec_rcpt", "$S", ""), call("reserve", "spec_rcpt", "$S", nil),
                call("reserve", "spec_rcpt", "$S", "i\0j"), call("check", "spec_rcpt", "$S", nil, nil),
            }
        end)

        it("are answered by the C side on RocksDB, and left to the classic ones elsewhere", function()
            local a = require("ffi").new("op_ffi_limit_answer_t")
            local s = subject()
            local rc = reg.api.limit(0, "spec_rcpt", 9, s, #s, nil, 0, 1, -1, a)
            if rocks then
                assert.equal(1, rc)
                assert.equal(5, a.max)
                assert.equal(reg.active and reg.fast["limit.reserve"] or reg.classic["limit.reserve"],
                    limit.reserve)
            else
                assert.equal(0, rc) -- Redis (may wait) or no counters service
            end
        end)
    end)
end)
