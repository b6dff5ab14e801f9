-- Replays the recorded Postfix requests of spec/fixtures/requests/postout/
-- (README.md there: name=value blocks, "# expect: ANSWER" before each)
-- through lua/policies/postout.lua: an admin adds a case by adding a file.
local sandbox = require "outpost.sandbox"

local ROOT = OUTPOST_TEST.lua_dir:gsub("/lua$", "")
local DIR = ROOT .. "/spec/fixtures/requests/postout"
local policy = sandbox.load_policy(OUTPOST_TEST.lua_dir .. "/policies/postout.lua")

-- {{attrs = {...}, expect = "550 5.1.1", line = N}, ...} of one file
local function requests(path)
    local out, cur, expect = {}, nil, nil
    local n = 0
    for line in io.lines(path) do
        n = n + 1
        local e = line:match("^#%s*expect:%s*(.-)%s*$")
        if e then
            expect = e
        elseif line:match("^#") then
            -- a comment
        elseif line == "" then
            if cur then out[#out + 1] = cur end
            cur = nil
        else
            local name, value = line:match("^([%w_]+)=(.*)$")
            assert(name, path .. ":" .. n .. ": not name=value: " .. line)
            if not cur then
                assert(expect, path .. ":" .. n .. ": a request without '# expect:' before it")
                cur = { attrs = {}, expect = expect, line = n }
                expect = nil
            end
            cur.attrs[name] = value
        end
    end
    if cur then out[#out + 1] = cur end
    return out
end

local files = {}
local ls = assert(io.popen("ls " .. DIR .. "/*.req"))
for f in ls:lines() do files[#files + 1] = f end
ls:close()

describe("postout replays recorded requests", function()
    it("finds the recorded requests", function()
        assert.is_true(#files >= 5, "only " .. #files .. " files in " .. DIR)
    end)
    for _, path in ipairs(files) do
        local name = path:match("([^/]+)%.req$")
        it(name, function()
            local reqs = requests(path)
            assert.is_true(#reqs >= 1, path .. ": no request")
            for _, r in ipairs(reqs) do
                local a = policy.on_request({ attrs = r.attrs, service = "postout", tenant = "" })
                -- the answer begins with the expected words (whole words:
                -- "530 5.7.1" does not match "530 5.7.10 ...")
                local ok = a.text == r.expect or a.text:sub(1, #r.expect + 1) == r.expect .. " "
                assert.is_true(ok, string.format("%s:%d: want %s, answered %s", name, r.line,
                    r.expect, a.text))
            end
        end)
    end
end)
