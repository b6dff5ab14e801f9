-- The Redis backend's one server-side script (counters_redis.c loads it
-- once per connection and calls it by SHA).  Each call is one atomic step
-- on the server: no other client's command runs between its reads and its
-- writes, so check-and-add across nodes never admits more than the maximum.
--
-- ARGV[1] the operation, ARGV[2] the clock (0: the server's TIME, so every
-- node counts on one clock), ARGV[3] the key prefix.  Keys (prefix P):
--   P w:LIMIT:SUBJECT  hash: bucket start second -> count; 'e' the reset
--                      epoch; 'r' reserved, not yet settled.  Expires when
--                      its newest bucket leaves the window.
--   P o:LIMIT:SUBJECT  hash: an operator override (max, until, set_at, who, reason)
--   P ol               set of LIMIT\tSUBJECT with an override
--   P t:LIMIT          sorted set: subject -> start of its newest bucket (for top)
--   P r:INSTANCE       hash: LIMIT\tSUBJECT\tBUCKET\tEPOCH -> reserved
--   P rd               sorted set: instance -> deadline of its first reservation
local op = ARGV[1]
local now = tonumber(ARGV[2])
if now == 0 then now = tonumber(redis.call('TIME')[1]) end
local P = ARGV[3]

local function bucket_of(t, res) return math.floor(t / res) end

-- The window's buckets in it, oldest first: {bucket, count, field}.
local function read_window(wk, res, nb, prune)
    local h = redis.call('HGETALL', wk)
    local bs, epoch, reserved, stale = {}, 0, 0, {}
    local first = bucket_of(now, res) - nb + 1
    for i = 1, #h, 2 do
        local f, v = h[i], tonumber(h[i + 1])
        if f == 'e' then epoch = v
        elseif f == 'r' then reserved = v
        else
            local b = bucket_of(tonumber(f), res)
            if b >= first then
                if v > 0 then bs[#bs + 1] = { b, v, f } end
            elseif prune then stale[#stale + 1] = f end
        end
    end
    if #stale > 0 then redis.call('HDEL', wk, unpack(stale)) end
    table.sort(bs, function(x, y) return x[1] < y[1] end)
    return bs, epoch, reserved
end

local function sum(bs)
    local u = 0
    for _, x in ipairs(bs) do u = u + x[2] end
    return u
end

-- The first second from which `want` more fit (counter_window.c's rule).
local function next_free(bs, used, max, want, res, nb)
    if want > max then return -1 end
    if used + want <= max then return now end
    local left = used
    for _, x in ipairs(bs) do
        left = left - x[2]
        if left + want <= max then
            local t = (x[1] + nb) * res
            return t > now and t or now
        end
    end
    return -1
end

-- max and its source: 0 default, 1 directory, 2 operator.
local function effective(okey, max, max_override, dir_max)
    local o = redis.call('HMGET', okey, 'max', 'until')
    if o[1] then
        local u = tonumber(o[2]) or 0
        if u == 0 or u > now then return tonumber(o[1]), 2 end
    end
    if dir_max >= 0 then return math.min(dir_max, max_override), 1 end
    return max, 0
end

-- Settles an instance: keeps at most `keep` per (limit, subject), newest
-- buckets given back first; a bucket reset since (another epoch) or gone
-- is not touched.  logs, when a table, gets {limit, subject, released}.
local function settle(ik, rd, inst, keep, logs)
    local h = redis.call('HGETALL', ik)
    local groups, order = {}, {}
    for i = 1, #h, 2 do
        local l, s, b, e = string.match(h[i], '^([^\t]*)\t(.*)\t(%-?%d+)\t(%d+)$')
        if l then
            local g = l .. '\t' .. s
            if not groups[g] then
                groups[g] = { l = l, s = s, items = {}, total = 0 }
                order[#order + 1] = g
            end
            local n = tonumber(h[i + 1])
            table.insert(groups[g].items, { b = tonumber(b), f = b, e = tonumber(e), n = n })
            groups[g].total = groups[g].total + n
        end
    end
    table.sort(order)
    local kept, released = 0, 0
    for _, g in ipairs(order) do
        local x = groups[g]
        local give = (keep < 0 or x.total <= keep) and 0 or x.total - keep
        kept = kept + x.total - give
        released = released + give
        if logs and give > 0 then logs[#logs + 1] = { x.l, x.s, give } end
        local wk = P .. 'w:' .. x.l .. ':' .. x.s
        local epoch = tonumber(redis.call('HGET', wk, 'e') or '0')
        local settled = 0
        table.sort(x.items, function(a, b) return a.b > b.b end)
        for _, it in ipairs(x.items) do
            local g2 = math.min(give, it.n)
            if it.e == epoch then
                settled = settled + it.n
                if g2 > 0 then
                    local c = tonumber(redis.call('HGET', wk, it.f))
                    if c then
                        if c - g2 > 0 then redis.call('HINCRBY', wk, it.f, -g2)
                        else redis.call('HDEL', wk, it.f) end
                    end
                end
            end
            give = give - g2
        end
        if settled > 0 and redis.call('HGET', wk, 'r') then
            if redis.call('HINCRBY', wk, 'r', -settled) <= 0 then redis.call('HDEL', wk, 'r') end
        end
    end
    redis.call('DEL', ik)
    redis.call('ZREM', rd, inst)
    return kept, released
end

if op == 'count' then
    -- KEYS: window, override, top [, instance, deadlines]
    -- ARGV[4..]: mode (c|a|r), resolution, buckets, max, max_override, dir_max, n,
    --            subject, instance, limit\tsubject, reservation_timeout, instance ttl
    local mode, res, nb = ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6])
    local n = tonumber(ARGV[10])
    local max, src = effective(KEYS[2], tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9]))
    local bs, epoch = read_window(KEYS[1], res, nb, mode ~= 'c')
    local used = sum(bs)
    local ok = used + n <= max
    if mode == 'c' or not ok or n == 0 then
        return { ok and 1 or 0, max, used, math.max(max - used, 0),
                 next_free(bs, used, max, n, res, nb), src }
    end
    local cb = bucket_of(now, res)
    local cur = cb * res
    redis.call('HINCRBY', KEYS[1], tostring(cur), n)
    local found = false
    for _, x in ipairs(bs) do
        if x[1] == cb then x[2] = x[2] + n; found = true; break end
    end
    if not found then
        bs[#bs + 1] = { cb, n, tostring(cur) }
        table.sort(bs, function(x, y) return x[1] < y[1] end)
    end
    used = used + n
    if not found then
        -- a new bucket: the window now lives until it leaves, and the
        -- subject is active for top (its score: the bucket's start)
        local leaves = (bs[#bs][1] + nb) * res
        redis.call('EXPIREAT', KEYS[1], leaves)
        redis.call('ZADD', KEYS[3], cur, ARGV[11])
        redis.call('EXPIREAT', KEYS[3], leaves)
    end
    if mode == 'r' then
        redis.call('HINCRBY', KEYS[4], ARGV[13] .. '\t' .. cur .. '\t' .. epoch, n)
        redis.call('EXPIRE', KEYS[4], tonumber(ARGV[15]))
        redis.call('ZADD', KEYS[5], 'NX', now + tonumber(ARGV[14]), ARGV[12])
        redis.call('HINCRBY', KEYS[1], 'r', n)
    end
    local remaining = math.max(max - used, 0)
    return { 1, max, used, remaining,
             remaining > 0 and now or next_free(bs, used, max, 1, res, nb), src }
elseif op == 'settle' then
    -- KEYS: instance, deadlines; ARGV[4] keep (< 0: all), ARGV[5] instance
    local kept, released = settle(KEYS[1], KEYS[2], ARGV[5], tonumber(ARGV[4]), nil)
    return { kept, released }
elseif op == 'expire' then
    -- KEYS: deadlines; ARGV[4] most instances per call
    local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))
    local out = {}
    for _, inst in ipairs(due) do
        local logs = {}
        settle(P .. 'r:' .. inst, KEYS[1], inst, 0, logs)
        for _, x in ipairs(logs) do
            out[#out + 1] = inst
            out[#out + 1] = x[1]
            out[#out + 1] = x[2]
            out[#out + 1] = x[3]
        end
    end
    return out
elseif op == 'show' then
    -- KEYS: window, override; ARGV[4..]: resolution, buckets, max, max_override
    local res, nb = tonumber(ARGV[4]), tonumber(ARGV[5])
    local max, src = effective(KEYS[2], tonumber(ARGV[6]), tonumber(ARGV[7]), -1)
    local bs, _, reserved = read_window(KEYS[1], res, nb, false)
    local used = sum(bs)
    return { used + 1 <= max and 1 or 0, max, used, math.max(max - used, 0),
             next_free(bs, used, max, 1, res, nb), src, reserved }
elseif op == 'reset' then
    -- KEYS: window, top; ARGV[4] window seconds, ARGV[5] subject
    local e = tonumber(redis.call('HGET', KEYS[1], 'e') or '0')
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], 'e', e + 1)
    redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
    redis.call('ZREM', KEYS[2], ARGV[5])
    return 1
elseif op == 'oset' then
    -- KEYS: override, index; ARGV[4..]: max, until, who, reason, limit\tsubject
    redis.call('HSET', KEYS[1], 'max', ARGV[4], 'until', ARGV[5], 'set_at', now,
               'who', ARGV[6], 'reason', ARGV[7])
    redis.call('SADD', KEYS[2], ARGV[8])
    return now
elseif op == 'oclear' then
    -- KEYS: override, index; ARGV[4] limit\tsubject
    local o = redis.call('HMGET', KEYS[1], 'max', 'who', 'reason')
    redis.call('SREM', KEYS[2], ARGV[4])
    if not o[1] then return false end
    redis.call('DEL', KEYS[1])
    return { o[1], o[2] or '', o[3] or '' }
elseif op == 'olist' then
    -- KEYS: index; ARGV[4] limit ('' = all)
    local m = redis.call('SMEMBERS', KEYS[1])
    table.sort(m)
    local out = {}
    for _, x in ipairs(m) do
        local l, s = string.match(x, '^([^\t]*)\t(.*)$')
        if l and (ARGV[4] == '' or ARGV[4] == l) then
            local o = redis.call('HMGET', P .. 'o:' .. l .. ':' .. s,
                                 'max', 'until', 'set_at', 'who', 'reason')
            if o[1] then
                out[#out + 1] = l
                out[#out + 1] = s
                for i = 1, 5 do out[#out + 1] = o[i] or '' end
            end
        end
    end
    return out
elseif op == 'top' then
    -- KEYS: top; ARGV[4..]: resolution, buckets, max, how many, limit
    local res, nb, dmax, n, l = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]),
        tonumber(ARGV[7]), ARGV[8]
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', (bucket_of(now, res) - nb) * res)
    local all = {}
    for _, s in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
        local bs = read_window(P .. 'w:' .. l .. ':' .. s, res, nb, false)
        local used = sum(bs)
        if used > 0 then
            local max = effective(P .. 'o:' .. l .. ':' .. s, dmax, dmax, -1)
            all[#all + 1] = { s, used, max }
        end
    end
    local function fill(x) return x[3] > 0 and x[2] / x[3] or 1e18 end
    table.sort(all, function(a, b)
        if fill(a) ~= fill(b) then return fill(a) > fill(b) end
        if a[2] ~= b[2] then return a[2] > b[2] end
        return a[1] < b[1]
    end)
    local out = {}
    for i = 1, math.min(n, #all) do
        out[#out + 1] = all[i][1]
        out[#out + 1] = all[i][2]
        out[#out + 1] = all[i][3]
    end
    return out
end
return redis.error_reply('outpost: unknown operation ' .. tostring(op))
