-- Run by spec/e2e/test_ldap.sh against the harness's slapd with
-- reconnect_max = 500ms; stops, kills and restarts that slapd through
-- spec/harness/ldap-ctl.sh.
local ldap = require "outpost.ldap"
local outpost = require "outpost"

local CTL = os.getenv("ROOT") .. "/spec/harness/ldap-ctl.sh"
local function ctl(what, background)
    local cmd = background and ("(" .. background .. "; " .. CTL .. " " .. what .. ") >/dev/null 2>&1 &")
        or (CTL .. " " .. what)
    assert(os.execute(cmd) == 0, cmd)
end

local function alice(timeout)
    return ldap.search { base = "dc=example,dc=org", filter = "(uid=%s)", args = { "alice" }, attrs = { "mail" },
        timeout = timeout or 2, cache = false }
end

describe("LDAP faults", function()
    after_each(function()
        os.execute(CTL .. " resume >/dev/null 2>&1")
        os.execute(CTL .. " start >/dev/null 2>&1")
    end)

    it("answers timeout when the server stops answering a connection it has open", function()
        assert(alice())
        ctl("pause")
        local t0 = outpost.now()
        assert.same({ nil, "timeout" }, { alice(0.4) })
        assert.is_true(outpost.now() - t0 < 1.5)
        ctl("resume")
        assert(alice())
    end)

    it("answers unavailable to pending and new searches when slapd dies, then recovers by itself", function()
        assert(alice())
        ctl("pause")                       -- the next search waits ...
        ctl("kill", "sleep 0.3")           -- ... until slapd is killed under it
        local t0 = outpost.now()
        assert.same({ nil, "unavailable" }, { alice(3) })
        assert.is_true(outpost.now() - t0 < 2.5, "took " .. (outpost.now() - t0))
        -- new searches fail within their timeout, at once, while no server is up
        for _ = 1, 3 do
            t0 = outpost.now()
            local r, err = alice(1)
            assert.is_nil(r)
            assert.is_true(err == "unavailable" or err == "timeout", err)
            assert.is_true(outpost.now() - t0 < 1.5)
            outpost.sleep(0.1)
        end
        ctl("start")
        -- no reload, no restart: the backoff (at most 500ms here) reconnects
        local ok, tries = false, 0
        while not ok and tries < 50 do
            tries = tries + 1
            ok = alice(1) ~= nil
            if not ok then outpost.sleep(0.1) end
        end
        assert.is_true(ok, "no recovery after " .. tries .. " tries")
        assert.same({ "alice@example.org" }, alice()[1].attrs.mail)
    end)
end)
