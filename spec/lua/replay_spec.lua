-- Recorded Postfix requests, replayed through the policies (issue 6): an
-- admin adds a case by adding a file, spec/replay/SERVICE/NAME.req.
--
--   # expect: REJECT 5.7.1 function account app-ba is not enabled
--   # tenant: tu
--   request=smtpd_access_policy
--   protocol_state=RCPT
--   ...
--
-- SERVICE (the directory) names the policy: lua/policies/SERVICE.lua, or
-- with '-' as '_' (appout-stage1 -> appout_stage1.lua); it is also the
-- req.service the policy sees.  `# tenant:` is the listener's tenant (none:
-- "").  A file may hold several requests separated by an empty line (one
-- transaction: RCPT, RCPT, DATA); they run in order and `# expect:` is
-- compared with the answer to the last: the answer must start with it.
-- Requests run against the harness's servers, like every spec here.
local sandbox = require "outpost.sandbox"
local pldir = require "pl.dir"
local plpath = require "pl.path"

local ROOT = plpath.normpath(OUTPOST_TEST.lua_dir .. "/../spec/replay")

local function policy_file(service)
    for _, name in ipairs { service, (service:gsub("%-", "_")) } do
        local p = OUTPOST_TEST.lua_dir .. "/policies/" .. name .. ".lua"
        if plpath.isfile(p) then return p end
    end
    error("spec/replay/" .. service .. ": no policy lua/policies/" .. service .. ".lua")
end

local function parse(path)
    local case = { blocks = {}, tenant = "" }
    local block
    local n = 0
    for line in io.lines(path) do
        n = n + 1
        local key, value = line:match("^#%s*(%w+):%s*(.-)%s*$")
        if key == "expect" then case.expect = value
        elseif key == "tenant" then case.tenant = value
        elseif line:match("^#") then -- a comment
        elseif line:match("^%s*$") then block = nil
        else
            local k, v = line:match("^([%w_]+)=(.*)$")
            if not k then error(string.format("%s:%d: expected name=value, got '%s'", path, n, line), 0) end
            if not block then block = {}; case.blocks[#case.blocks + 1] = block end
            block[k] = v
        end
    end
    if not case.expect then error(path .. ": no '# expect: ACTION ...' line", 0) end
    if #case.blocks == 0 then error(path .. ": no request", 0) end
    return case
end

local services = pldir.getdirectories(ROOT)
table.sort(services)
for _, dir in ipairs(services) do
    local service = plpath.basename(dir)
    describe("replay " .. service, function()
        local policy = sandbox.load_policy(policy_file(service))
        local files = pldir.getfiles(dir, "*.req")
        table.sort(files)
        for _, file in ipairs(files) do
            local case = parse(file)
            it(plpath.basename(file) .. " -> " .. case.expect, function()
                local a
                for _, attrs in ipairs(case.blocks) do
                    a = policy.on_request({ attrs = attrs, service = service, tenant = case.tenant })
                end
                assert.equal(case.expect, a.text:sub(1, #case.expect),
                    file .. ": answered " .. a.text)
            end)
        end
    end)
end
