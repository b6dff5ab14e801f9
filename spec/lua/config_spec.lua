-- outpost.config(): the sections only Lua reads reach the engine's Lua
-- state as plain tables (engine/config/config_lua.c), with the values of
-- the configuration the specs run with (build/harness/outpost.conf) and
-- the schema's defaults for keys it does not give.
local outpost = require "outpost"
local ldap = require "outpost.ldap"

describe("outpost.config().directory", function()
    it("holds the directory { } values, typed", function()
        local d = outpost.config().directory
        assert.equal("dc=example,dc=org", d.base)
        assert.equal("(&(objectClass=inetOrgPerson)(|(uid=%1)(mail=%1)))", d.user_filter)
        assert.same({ "mail", "mailLocalAddress" }, d.sender_attrs)
        assert.equal(250, d.default_limit)
    end)

    it("fills in the defaults of keys the file does not give", function()
        local d = outpost.config().directory
        assert.equal("mailAllowedNetwork", d.networks_attr)
        assert.equal("mailServiceTenant", d.tenants_attr)
    end)

    it("is a copy each time; ldap.directory() gives the same values", function()
        local a, b = outpost.config().directory, outpost.config().directory
        assert.are_not.equal(a, b)
        a.base = "o=changed"
        assert.equal("dc=example,dc=org", outpost.config().directory.base)
        assert.same(outpost.config().directory, ldap.directory())
    end)
end)
