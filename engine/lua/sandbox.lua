-- The environment policies and their libraries run in (require "outpost.sandbox").
--
-- Built into the engine, not loaded from lua_dir, so a broken library file
-- can never weaken it.  Each generation gets its own copy: the module table
-- below is created afresh by every lua_State.
--
-- What a policy sees: the outpost modules, libraries under <lua_dir>/lib
-- (loaded through the same sandbox), and a safe subset of the standard
-- library.  Not there: io, os.execute and the rest of os, load/loadstring/
-- dofile/loadfile (no code from request data), debug, package, setfenv,
-- getfenv, collectgarbage, string.dump, and coroutine (a primitive that
-- waits must yield to the engine, not to a coroutine of the policy).
--
-- Globals: every file gets an environment of its own.  While the file loads
-- it may define globals (top-level functions); afterwards its environment is
-- frozen, so a request can never leave a value behind for the next one
-- through a global.  Reading an undefined global raises, which catches typos
-- in the request path instead of answering with a silent nil.

local host_require = require
local host_loadfile = loadfile
local host_setfenv = setfenv
local host_preload = package.preload
local io_open = io.open
local raw_getmetatable = debug.getmetatable

local M = {}

local lib_dir
local site_dir -- the site's overrides of lib_dir's modules, or nil
local loaded = {}  -- module name -> value, per generation
local envs = {}    -- every environment made, frozen by M.freeze()
local LOADING = {}

local safe = {}
for _, k in ipairs { "assert", "error", "ipairs", "next", "pairs", "pcall", "select",
    "tonumber", "tostring", "type", "unpack", "xpcall", "rawequal", "rawget", "rawset",
    "setmetatable", "getmetatable", "_VERSION" } do
    safe[k] = _G[k]
end

local function copy(t, omit)
    local c = {}
    for k, v in pairs(t) do
        if not (omit and omit[k]) then c[k] = v end
    end
    return c
end
-- pairs honours __pairs, as Lua 5.2 does, so pairs(req.attrs) lists every
-- attribute of the request (a userdata read lazily, see lua_api_request.h).
safe.pairs = function(t)
    local mt = raw_getmetatable(t)
    local p = type(mt) == "table" and rawget(mt, "__pairs")
    if p then return p(t) end
    return next, t, nil
end

-- Shared tables are read-only: string, table, math, bit, os and the
-- outpost.* modules are the same tables for every request and tenant of a
-- generation, so a request that could assign string.lower or
-- outpost.log would change what the next one runs.  A read-only table is
-- an empty proxy: reads go through to the real one, assignments raise,
-- its metatable is protected, pairs lists the real one, and rawset and
-- table.insert refuse it.
local frozen_tables = setmetatable({}, { __mode = "k" }) -- proxy -> the real table
local host_rawset, host_insert, host_next = rawset, table.insert, next
local function readonly(t, name)
    local proxy = setmetatable({}, {
        __index = t,
        __newindex = function(_, k)
            error("cannot assign " .. name .. "." .. tostring(k) .. ": " .. name .. " is shared " ..
                "by every request and tenant, and read-only", 2)
        end,
        __metatable = name .. " (read-only)",
        __pairs = function() return host_next, t, nil end,
    })
    frozen_tables[proxy] = t
    return proxy
end
local function refuse_frozen(who, t)
    if frozen_tables[t] then
        error(who .. ": " .. getmetatable(t) .. " cannot be changed", 3)
    end
end
safe.rawset = function(t, k, v)
    refuse_frozen("rawset", t)
    return host_rawset(t, k, v)
end

local table_copy = copy(table)
table_copy.insert = function(t, ...)
    refuse_frozen("table.insert", t)
    return host_insert(t, ...)
end
-- math.randomseed would reseed the generator every request shares.
safe.string = readonly(copy(string, { dump = true }), "string")
safe.table = readonly(table_copy, "table")
safe.math = readonly(copy(math, { randomseed = true }), "math")
safe.bit = readonly(copy(bit), "bit")
safe.os = readonly({ time = os.time, clock = os.clock, date = os.date, difftime = os.difftime }, "os")
-- getmetatable("").__index is the real string library: a policy sees a
-- read-only view instead.
local string_mt = raw_getmetatable("")
local string_mt_view = readonly({ __index = safe.string }, "the string metatable")
safe.getmetatable = function(v)
    local mt = getmetatable(v)
    if mt == string_mt then return string_mt_view end
    return mt
end

local function file_exists(path)
    local f = io_open(path, "r")
    if f then f:close() return true end
    return false
end

local function new_env()
    local env = setmetatable({}, { __index = safe })
    envs[#envs + 1] = env
    return env
end

-- daemon { lua_jit = lib }: only the engine's libraries (lib_dir) may be
-- compiled.  A policy's or a site library's functions are marked
-- never-compile, all of them at once from the chunk (jit.off(fn, true)
-- reaches every function the file defines): LuaJIT then starts no trace
-- in them, and a trace that calls or returns into one aborts, so their
-- loops run in the interpreter, where the CPU budget's hook stops them.
local interpret_outside_lib = false
local jit_off = jit.off
local function under(dir, path)
    return dir ~= nil and path:sub(1, #dir + 1) == dir .. "/"
end

-- Loads a file into a fresh environment; errors carry "path:line:".
local function load_sandboxed(path)
    local fn, err = host_loadfile(path)
    if not fn then error(err, 0) end
    if interpret_outside_lib and (under(site_dir, path) or not under(lib_dir, path)) then
        jit_off(fn, true)
    end
    host_setfenv(fn, new_env())
    return fn
end

local function sandbox_require(name)
    if type(name) ~= "string" then
        error("require: module name must be a string", 2)
    end
    local m = loaded[name]
    if m == LOADING then error("require: circular require of '" .. name .. "'", 2) end
    if m ~= nil then return m end
    if name:match("^outpost") and host_preload[name] and name ~= "outpost.sandbox" then
        m = readonly(host_require(name), name) -- the engine's own C modules
    else
        local rel = name:gsub("%.", "/")
        -- The site's copy (daemon { site_lua_dir }) first, then the shipped one.
        local path
        for _, dir in ipairs(site_dir and { site_dir, lib_dir } or { lib_dir }) do
            path = dir .. "/" .. rel .. ".lua"
            if file_exists(path) then break end
            path = dir .. "/" .. rel .. "/init.lua"
            if file_exists(path) then break end
            path = nil
        end
        if not path then
            error("module '" .. name .. "' not found (looked in " ..
                  (site_dir and site_dir .. " and " or "") .. lib_dir .. ")", 2)
        end
        loaded[name] = LOADING
        local ok, res = pcall(load_sandboxed(path), name)
        if not ok then
            loaded[name] = nil
            error(res, 0)
        end
        m = res
        if m == nil then m = true end
        if type(m) == "table" and name:match("^outpost%.") then m = readonly(m, name) end
        if M.frozen then M.freeze() end -- required lazily, inside a request
    end
    loaded[name] = m
    return m
end
safe.require = sandbox_require

local core = host_require "outpost"
safe.print = function(...)
    local parts = {}
    for i = 1, select("#", ...) do parts[i] = tostring((select(i, ...))) end
    core.log("info", table.concat(parts, "\t"))
end

setmetatable(safe, {
    __index = function(_, k)
        error("undefined global '" .. tostring(k) .. "'", 2)
    end,
    __newindex = function(_, k)
        error("cannot assign global '" .. tostring(k) .. "' of the standard library", 2)
    end,
})

function M.init(dir)
    lib_dir = dir
end

function M.site(dir)
    site_dir = dir
end

function M.interpret_policies()
    interpret_outside_lib = true
end

-- The entry points a policy may define (vm.h op_phase_t).
local HANDLERS = {
    on_request = true, -- Postfix policy delegation
    on_connect = true, on_helo = true, on_mail = true, on_rcpt = true, on_data = true,
    on_header = true, on_eoh = true, on_body = true, on_eom = true, on_abort = true, -- milter
}

-- Loads a policy file; returns its policy table.  A policy returns a table
-- of handlers (on_request for the policy protocol, on_connect ... on_eom
-- for milter phases), or a function, which is its on_request.  A key that
-- looks like a handler but is none (on_rcp) is an error, not a silently
-- ignored typo.
function M.load_policy(path)
    local ret = load_sandboxed(path)()
    if type(ret) == "function" then return { on_request = ret } end
    if type(ret) ~= "table" then
        error(path .. ": a policy must return a table of handlers (on_request, on_eom, ...) " ..
            "or a function; got " .. type(ret), 0)
    end
    local n = 0
    for k, v in pairs(ret) do
        if type(k) == "string" and k:match("^on_") then
            if not HANDLERS[k] then
                error(path .. ": unknown handler '" .. k .. "' (handlers: on_request, on_connect, " ..
                    "on_helo, on_mail, on_rcpt, on_data, on_header, on_eoh, on_body, on_eom, " ..
                    "on_abort)", 0)
            end
            if type(v) ~= "function" then
                error(path .. ": " .. k .. " must be a function, got " .. type(v), 0)
            end
            n = n + 1
        end
    end
    if n == 0 then
        error(path .. ": a policy must define at least one handler (on_request, on_eom, ...)", 0)
    end
    if ret.keep_body ~= nil and (type(ret.keep_body) ~= "number" or ret.keep_body < 0) then
        error(path .. ": keep_body must be a number of bytes", 0)
    end
    return ret
end

local function frozen(_, k)
    error("assignment to global '" .. tostring(k) .. "' after loading: keep request state " ..
        "in locals (globals would leak into the next request)", 2)
end

-- After loading, no file's globals may change any more.  An environment
-- becomes an empty proxy in front of what it defined, so assigning to an
-- existing global hits __newindex as well as assigning a new one.
function M.freeze()
    M.frozen = true
    for _, env in ipairs(envs) do
        local mt = getmetatable(env)
        if mt.__newindex ~= frozen then
            local defined = setmetatable({}, { __index = safe })
            for k, v in pairs(env) do defined[k] = v end
            for k in pairs(defined) do env[k] = nil end
            setmetatable(env, { __index = defined, __newindex = frozen })
        end
    end
end

-- The body of every request coroutine.  The engine resumes it with a
-- policy's on_request and the request; it yields (ok, answer) when the
-- policy is done, and stays suspended, ready for the next request, so the
-- engine can reuse the coroutine instead of making one per request.  Yields
-- of primitives in between go to the engine too; it tells them apart by
-- the pending record a primitive leaves.  Errors are caught here with
-- their traceback, so a failing policy does not kill the coroutine.
local yield = coroutine.yield
local traceback = debug.traceback
local getinfo, getlocal = debug.getinfo, debug.getlocal
-- The check outpost.pipeline was running where the error was raised: its
-- loop keeps it in a local named `check`, which the log then names.
local function running_check()
    for level = 2, 100 do
        if not getinfo(level, "l") then return nil end
        for i = 1, 250 do
            local name, v = getlocal(level, i)
            if name == nil then break end
            if name == "check" and type(v) == "table" and type(rawget(v, "id")) == "string" then
                return rawget(v, "id")
            end
        end
    end
end
local function with_traceback(e)
    local id = running_check()
    return traceback((id and "check " .. id .. ": " or "") .. tostring(e), 1)
end
function M.worker(handler, req)
    while true do
        handler, req = yield(xpcall(handler, with_traceback, req))
    end
end

M.require = sandbox_require
-- For specs, which run in the host (never for policies: they cannot
-- require outpost.sandbox): the table behind a read-only one, to stub a
-- module's function the policies call.
function M.writable(t)
    return frozen_tables[t] or t
end
return M
