-- dunno: answers DUNNO to everything (Postfix goes on with its other
-- restrictions).  The baseline `make bench` measures the engine with, and a
-- safe placeholder for a listener that must answer before its policy is written.
local A = require "outpost.action"

return {
    on_request = function(req)
        return A.dunno()
    end,
}
