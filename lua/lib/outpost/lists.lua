-- outpost.lists: the data lists under lists_dir, read when a policy loads.
-- A reload reads them again; a broken line refuses the reload with the
-- list's file and line, like a broken policy.
--
--   local lists = require "outpost.lists"
--   local CAMPUS = lists.networks("campus_networks")   -- "CIDR [label]" per line
--   local LOCAL_DOMAINS = lists.domains("local_domains") -- a domain per line
--   local MTA_DOMAINS = lists.map("mta_domains")        -- "KEY VALUE..." per line
--   local MTAS = lists.network_map("mailout_mta_domains") -- "NETWORK DOMAIN..." per line
local raw = require "outpost.listfile"
local netset = require "outpost.netset"
local outpost = require "outpost"

local M = {}

local function fail(e, fmt, ...)
    error(string.format("%s:%d: ", e.file, e.line) .. string.format(fmt, ...), 0)
end

-- Every non-blank, non-comment line: {file=, line=, text=, fields={...}}.
function M.entries(name)
    return raw.read(name)
end

-- A netset of "NETWORK [LABEL]" lines.
function M.networks(name)
    local set = netset.new()
    for _, e in ipairs(raw.read(name)) do
        if #e.fields > 2 then fail(e, "expected 'NETWORK [LABEL]', got '%s'", e.text) end
        local ok, err = pcall(set.add, set, e.fields[1], e.fields[2])
        if not ok then fail(e, "%s", err) end
    end
    return set
end

-- A set of domains in their normal form (outpost.domain): {["example.org"] = true}.
function M.domains(name)
    local set = {}
    for _, e in ipairs(raw.read(name)) do
        if #e.fields ~= 1 then fail(e, "expected one domain, got '%s'", e.text) end
        local d = outpost.domain(e.fields[1])
        if not d then fail(e, "'%s' is not a domain name", e.fields[1]) end
        set[d] = true
    end
    return set
end

-- A set of words, lower-cased (user ids, addresses): {["alice"] = true}.
function M.words(name)
    local set = {}
    for _, e in ipairs(raw.read(name)) do
        if #e.fields ~= 1 then fail(e, "expected one word, got '%s'", e.text) end
        set[e.fields[1]:lower()] = true
    end
    return set
end

-- "KEY VALUE [VALUE...]" lines: {[key:lower()] = {values...}}; a key given
-- twice is an error (the second line would silently win).
function M.map(name)
    local map, seen = {}, {}
    for _, e in ipairs(raw.read(name)) do
        if #e.fields < 2 then fail(e, "expected 'KEY VALUE...', got '%s'", e.text) end
        local key = e.fields[1]:lower()
        if seen[key] then fail(e, "'%s' is already listed at line %d", e.fields[1], seen[key]) end
        seen[key] = e.line
        local values = {}
        for i = 2, #e.fields do values[#values + 1] = e.fields[i] end
        map[key] = values
    end
    return map
end

-- "NETWORK DOMAIN [DOMAIN...]" lines (MO5, MO9: a campus MTA's own mail
-- domains).  map:match(ip) is the entry of the longest prefix holding ip,
-- { domains = {[domain] = true}, list = "a.example, b.example" }, or nil;
-- map.domains is every domain of every entry.  Domains in outpost.domain
-- form; a network twice is an error.
local network_map = {}
network_map.__index = network_map

function network_map:match(ip)
    local key = self.networks:match(ip)
    return key and self.entries[key]
end

function M.network_map(name)
    local map = setmetatable({ networks = netset.new(), entries = {}, domains = {} }, network_map)
    for _, e in ipairs(raw.read(name)) do
        if #e.fields < 2 then fail(e, "expected 'NETWORK DOMAIN...', got '%s'", e.text) end
        local key = e.fields[1]:lower()
        if map.entries[key] then fail(e, "'%s' is already listed", e.fields[1]) end
        local ok, err = pcall(map.networks.add, map.networks, key, key)
        if not ok then fail(e, "%s", err) end
        local set, names = {}, {}
        for i = 2, #e.fields do
            local d = outpost.domain(e.fields[i])
            if not d then fail(e, "'%s' is not a domain name", e.fields[i]) end
            set[d] = true
            names[#names + 1] = d
            map.domains[d] = true
        end
        map.entries[key] = { domains = set, list = table.concat(names, ", ") }
    end
    return map
end

-- The labels of a networks list, lower-cased: {["area-a"] = true}.
function M.labels(name)
    local set = {}
    for _, e in ipairs(raw.read(name)) do
        if e.fields[2] then set[e.fields[2]:lower()] = true end
    end
    return set
end

-- Like words, but every word must be in known, a set from another list
-- (what: its name in the error, e.g. "network area of campus_networks").
function M.words_of(name, known, what)
    local set = M.words(name)
    for _, e in ipairs(raw.read(name)) do
        if not known[e.fields[1]:lower()] then fail(e, "'%s' is no %s", e.fields[1], what) end
    end
    return set
end

return M
