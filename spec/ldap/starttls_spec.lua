-- Run by spec/e2e/test_ldap.sh against the harness's slapd, over StartTLS
-- (starttls = yes) and over ldaps: with the CA that signed slapd's
-- certificate (searches work), and with another CA (OUTPOST_EXPECT_TLS=fail:
-- no connection comes up, searches answer unavailable).
local ldap = require "outpost.ldap"
local outpost = require "outpost"

local expect_fail = os.getenv("OUTPOST_EXPECT_TLS") == "fail"

describe("StartTLS", function()
    it(expect_fail and "refuses a server whose certificate the CA did not sign"
        or "searches over a verified StartTLS connection", function()
        local r, err
        for _ = 1, 30 do -- the first connect may still run; bounded
            r, err = ldap.search { base = "dc=example,dc=org", filter = "(uid=%s)", args = { "bob" }, attrs = { "mail" },
                cache = false, timeout = 2 }
            if r or (expect_fail and ldap.stats().connect_failures > 0) then break end
            outpost.sleep(0.1)
        end
        if expect_fail then
            assert.is_nil(r)
            assert.equal("unavailable", err)
            assert.equal(0, ldap.stats().ready)
            assert.is_true(ldap.stats().connect_failures > 0)
        else
            assert.is_nil(err)
            assert.same({ "bob@example.org" }, r[1].attrs.mail)
        end
    end)
end)
