-- outpostd test: hosts busted inside the engine (see engine/lua/testrunner.c).
--
-- Runs in a coroutine the engine drives from its event loop, so specs use
-- the real primitives (outpost.sleep, later dns, ldap, counters) and the
-- real coroutine machinery.  Counts results through an output handler that
-- prints TAP and tallies, because busted's runner does not return counts:
-- it ends a failing run with os.exit (caught below).
local args = ...

local counts = { passed = 0, failed = 0, errors = 0, pending = 0 }

package.preload["outpost.test_output"] = function()
    return function(options)
        local busted = require "busted"
        local tap = require "busted.outputHandlers.TAP" (options)
        busted.subscribe({ "test", "end" }, function(_, _, status)
            if status == "success" then counts.passed = counts.passed + 1
            elseif status == "pending" then counts.pending = counts.pending + 1
            elseif status == "failure" then counts.failed = counts.failed + 1
            else counts.errors = counts.errors + 1 end
            return nil, true
        end)
        busted.subscribe({ "error" }, function(element)
            -- errors of an `it` are counted at its end; these are errors in
            -- describe blocks, hooks or loading a spec file
            if element.descriptor ~= "it" then counts.errors = counts.errors + 1 end
            return nil, true
        end)
        return tap
    end
end

arg = { [0] = "outpostd test" }
for i, a in ipairs(args) do arg[i] = a end

-- busted's runner ends a run with failures by os.exit(1) here, which would
-- leave before the engine prints "N passed, N failed" (spec/run-all.sh then
-- counts the whole layer as one failure): turn that exit into an error the
-- pcall below catches, and let the counts speak.
local EXIT = {}
local real_exit = os.exit
os.exit = function() error(EXIT, 0) end
local ok, err = pcall(require "busted.runner", { standalone = false, output = "outpost.test_output" })
os.exit = real_exit
if not ok and err ~= nil and err ~= EXIT then
    io.stderr:write("outpostd test: ", tostring(err), "\n")
    counts.errors = counts.errors + 1
end
return counts.passed, counts.failed + counts.errors, counts.pending
