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
end)
