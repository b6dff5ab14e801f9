-- outpost.netset: CIDR sets as policies use them.
local netset = require "outpost.netset"

describe("outpost.netset", function()
    local set = netset.new()
        :add("10.0.0.0/8", "campus")
        :add("10.1.0.0/16", "area-a")
        :add("2001:db8::/32", "campus6")

    it("finds the longest prefix and its label", function()
        assert.same({ "area-a", 16 }, { set:match("10.1.2.3") })
        assert.same({ "campus", 8 }, { set:match("10.2.0.1") })
        assert.same({ "campus6", 32 }, { set:match("2001:db8::25") })
        assert.is_nil(set:match("192.0.2.1"))
        assert.is_nil(set:match("no address"))
        assert.equal(3, #set)
    end)

    it("raises on a network that is not one, naming it", function()
        assert.has_error(function() set:add("10.1.2.3/8") end,
            "'10.1.2.3/8' has host bits set (did you mean a /8 of another network?)")
        assert.has_error(function() set:add("campus") end)
    end)
end)
