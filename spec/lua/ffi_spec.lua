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

    describe("the DNS and LDAP cache hits", function()
        local dns = require "outpost.dns"
        local ldap = require "outpost.ldap"
        local BASE = "dc=example,dc=org"
        local on = reg.active

        -- A lookup's answer as plain values: the records (MX ones as "pref
        -- host"), its ttl, or nil and the token, or the error.
        local function plain(ok, v, err)
            if not ok then return { error = tostring(v):gsub("^.-:%d+: ", "") } end
            if v == nil then return { token = err } end
            local out = { ttl = v.ttl }
            for i = 1, #v do
                local r = v[i]
                out[i] = type(r) == "table" and (r.pref .. " " .. r.host) or r
            end
            return out
        end
        local function both(name, ...)
            local want = plain(pcall(reg.classic[name], ...))
            local got = plain(pcall(reg.fast[name], ...))
            -- the ttl is what is left when read: a second may end between
            if want.ttl and got.ttl and math.abs(want.ttl - got.ttl) <= 1 then got.ttl = want.ttl end
            return want, got
        end

        it("answer hits, misses and negative answers as the classic ones", function()
            local cases = {
                { "dns.mx", "withmx.test" }, { "dns.a", "aonly.test" }, { "dns.a", "AONLY.Test." },
                { "dns.aaaa", "aaaaonly.test" }, { "dns.txt", "example.org" },
                { "dns.txt", "multitxt.test" }, { "dns.ptr", "127.0.0.10" },
                { "dns.ptr", "2001:DB8::10" }, { "dns.a", "dual.test" }, { "dns.mx", "chain1.test" },
                { "dns.a", "nxdomain.test" }, { "dns.mx", "aonly.test" }, -- cached negative answers
                { "dns.a", "q.servfail.test" }, { "dns.a", "q.refused.test" }, -- never cached
                { "dns.a", "exa mple.test" }, { "dns.ptr", "not-an-ip" }, { "dns.a", 42 },
                { "dns.mx", {} }, { "dns.a", nil },
            }
            for round = 1, 60 do -- past the JIT's hot count: compiled code is compared too
                for _, c in ipairs(cases) do
                    local want, got = both(c[1], c[2])
                    if round == 1 or not pcall(assert.same, want, got) then
                        assert.same(want, got, c[1] .. " " .. tostring(c[2]) .. ", round " .. round)
                    end
                end
            end
            -- a timeout is never cached: both wait for it
            local want, got = both("dns.a", "q.timeout.test")
            assert.same({ token = "timeout" }, want)
            assert.same(want, got)
        end)

        it("hand out one read-only table per cached answer, which refuses new keys", function()
            assert(dns.mx("withmx.test")) -- cached now
            local a = assert(dns.mx("withmx.test"))
            local b = assert(dns.mx("WithMX.test."))
            if not on then return end -- the classic functions make a table per call
            assert.equal(a, b)
            assert.equal(a, assert(reg.fast["dns.mx"]("withmx.test")))
            assert.matches("read%-only", getmetatable(a))
            for _, store in ipairs {
                function() a.extra = 1 end, function() a.ttl = 1 end,
                function() a[#a + 1] = "x" end, function() a[1].weight = 1 end,
            } do
                local ok, err = pcall(store)
                assert.is_false(ok)
                assert.matches("read%-only", err)
            end
            assert.equal("10 mx1.withmx.test", a[1].pref .. " " .. a[1].host)
            assert.is_true(a.ttl > 0 and a.ttl <= 300)
            assert.is_nil(rawget(a, "ttl")) -- read from the entry's expiry
            local txt = assert(dns.txt("example.org"))
            assert.equal(txt, dns.txt("example.org"))
            assert.has_error(function() txt.x = 1 end)
        end)

        it("mail_domain shares its answer per cached lookup as well", function()
            assert(dns.mail_domain("withmx.test"))
            local again = assert(dns.mail_domain("withmx.test"))
            assert.same({ "mx1.withmx.test", "mx2.withmx.test" }, { unpack(again.hosts) })
            assert.equal("mx", again.kind)
            assert.is_true(again.ttl > 0 and again.ttl <= 300)
            local imp = assert(dns.mail_domain("AOnly.test"))
            assert.equal("implicit", imp.kind)
            assert.same({ "aonly.test" }, { unpack(imp.hosts) })
            assert.same({ nil, "nullmx" }, { dns.mail_domain("nullmx.test") })
            assert.same({ nil, "nullmx" }, { dns.mail_domain("nullmx.test") })
            if not on then return end
            assert.equal(again, dns.mail_domain("withmx.test"))
            assert.equal(imp, dns.mail_domain("aonly.test"))
            assert.has_error(function() again.extra = "x" end)
            assert.has_error(function() again.hosts[3] = "x" end)
            assert.has_error(function() imp.ttl = 1 end)
        end)

        it("raise where the classic ones raise, even on a hit", function()
            assert(dns.a("aonly.test")) -- cached now
            assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "alice" } })
            local calls = {
                function() return dns.a("aonly.test") end,
                function() return dns.ptr("127.0.0.10") end,
                function() return ldap.search { base = BASE, filter = "(uid=%s)", args = { "alice" } } end,
            }
            for i, call in ipairs(calls) do
                assert(call()) -- a hit, here
                local ok, err = pcall(table.sort, { 3, 1, 2 }, function(x, y) call() return x < y end)
                assert.is_false(ok, "sort " .. i)
                assert.matches("cannot wait here", err)
                ok, err = pcall(string.gsub, "ab", "%w", function() call() end)
                assert.is_false(ok, "gsub " .. i)
                assert.matches("cannot wait here", err)
                ok, err = coroutine.resume(coroutine.create(call))
                assert.is_false(ok, "coroutine " .. i)
                assert.matches("cannot wait here", err)
                ok, err = pcall(coroutine.wrap(call))
                assert.is_false(ok, "wrap " .. i)
                assert.matches("cannot wait here", err)
                assert(call()) -- and a hit again once out of them
            end
            -- the wrappers of coroutine.resume and wrap keep their answers
            local co = coroutine.create(function(a) local b = coroutine.yield(a + 1) return b * 2 end)
            assert.same({ true, 2 }, { coroutine.resume(co, 1) })
            assert.same({ true, 10 }, { coroutine.resume(co, 5) })
            assert.same({ false, "cannot resume dead coroutine" }, { coroutine.resume(co) })
            local gen = coroutine.wrap(function() coroutine.yield(1) coroutine.yield(2) end)
            assert.same({ 1, 2 }, { gen(), gen() })
            assert.has_error(function() coroutine.wrap(function() error("boom") end)() end)
        end)

        it("a hit is answered without a miss nor a second count", function()
            local before = ldap.stats()
            assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "alice" } })
            assert(ldap.search { base = BASE, filter = "(uid=%s)", args = { "alice" } })
            local after = ldap.stats()
            assert.equal(before.searches + 2, after.searches)
            assert.equal(before.sent, after.sent)
            assert.is_true(after.cache_hits >= before.cache_hits + 2)
        end)

        it("an answer that expired between two calls is a miss, then a new table", function()
            assert(dns.a("short.test")) -- TTL 2 s; this one may be the miss
            local t1 = assert(dns.a("short.test"))
            local t2 = assert(dns.a("short.test"))
            if on then assert.equal(t1, t2) end
            require("outpost").sleep(2.2)
            if on then assert.equal(0, t2.ttl) end -- a shared answer's ttl is read when asked
            local t3 = assert(dns.a("short.test")) -- a miss: the classic one asks unbound
            local t4 = assert(dns.a("short.test"))
            assert.equal("127.0.0.7", t4[1])
            assert.are_not.equal(t1, t3)
            assert.are_not.equal(t1, t4)
            assert.is_true(t4.ttl >= 1 and t4.ttl <= 2)
        end)

        it("ldap.search answers as the classic one, and a flush makes new answers", function()
            ldap.flush()
            local function q(uid, extra)
                local t = { base = BASE, filter = "(uid=%s)", args = { uid }, attrs = { "mail", "uid" } }
                for k, v in pairs(extra or {}) do t[k] = v end
                return t
            end
            local cases = {
                q("alice"), q("nosuchuser"), q("alice", { scope = "one" }), q("alice", { timeout = 5 }),
                q("alice", { attrs = { "1.1" } }), { base = "ou=nowhere," .. BASE, filter = "(uid=x)" },
                q(42), q("alice", { cache = false }), q("alice", { scope = "deep" }),
                { base = BASE, filter = "(uid=%s)" }, { filter = "(uid=x)" }, "(uid=x)",
            }
            for round = 1, 60 do
                for i, c in ipairs(cases) do
                    local want = { pcall(reg.classic["ldap.search"], c) }
                    local got = { pcall(reg.fast["ldap.search"], c) }
                    if not want[1] then want[2] = want[2]:gsub("^.-:%d+: ", "") end
                    if not got[1] then got[2] = got[2]:gsub("^.-:%d+: ", "") end
                    if round == 1 or not pcall(assert.same, want, got) then
                        assert.same(want, got, "case " .. i .. ", round " .. round)
                    end
                end
            end
            local a = assert(ldap.search(q("alice")))
            assert.equal(1, #a)
            assert.equal(a, ldap.search(q("alice"))) -- the same answer, the same list
            ldap.flush()
            local b = assert(ldap.search(q("alice"))) -- a miss: a new answer
            assert.are_not.equal(a, b)
            assert.same(a[1].attrs.mail, b[1].attrs.mail)
            assert.equal(b, ldap.search(q("alice")))
            -- shared, so read-only: a new key raises, whichever path made it
            for _, store in ipairs {
                function() b.extra = 1 end, function() b[2] = {} end, function() b[1].x = 1 end,
                function() b[1].attrs.cn = { "x" } end,
            } do
                local ok, err = pcall(store)
                assert.is_false(ok)
                assert.matches("ffi_spec.lua:%d+: cannot assign field .* read%-only", err)
            end
            assert.equal("outpost.ldap answer (read-only)", getmetatable(b))
        end)
    end)
end)
