-- The Redis backend's one server-side script (counters_redis.c loads it
-- once per connection and calls it by SHA).  Each call is one atomic step
-- on the server: no other client's command runs between its reads and its
-- writes, so check-and-add across nodes never admits more than the maximum.
--
-- ARGV[1] the operation, ARGV[2] the clock (0: the server's TIME, so every
-- node counts on one clock), ARGV[3] the key prefix.  Keys (prefix P):
--   P w:LIMIT:SUBJECT  hash: bucket start second -> count; 'e' the reset
--                      epoch; 'r' reserved, not yet settled; 'u' the sum of
--                      its buckets and 'b' a second no later than its
--                      oldest bucket, so a count reads six fields, not the
--                      window's buckets (up to window / resolution of them),
--                      until 'b' leaves the window; 'x' = 1: the subject had
--                      no override in force when a count last looked (oset
--                      drops it), so counts skip the override's lookup.
--                      Expires when its newest bucket leaves the window.
--   P o:LIMIT:SUBJECT  hash: an operator override (max, until, set_at, who, reason)
--   P ol               set of LIMIT\tSUBJECT with an override
--   P t:LIMIT          sorted set: subject -> start of its newest bucket (for top)
--   P rs:SLOT          hash: instance -> its transaction's record, a line
--                      LIMIT\tSUBJECT\tBUCKET\tEPOCH\tN per reservation; SLOT
--                      is the transaction's deadline (its rd score) in
--                      minutes, so settle finds it from rd, and the hash
--                      expires a margin (ARGV) after its last deadline (a
--                      safety net: the sweep settles each record at its
--                      deadline).  A field, not a key per transaction: the
--                      keyspace does not grow with the open transactions.
--                      The policy protocol is made of lines, so no subject
--                      or instance has one.
--   P r:INSTANCE       what older versions wrote instead, still settled and
--                      appended to: a string of the same lines (made with
--                      its expiry), or, older, a hash
--                      LIMIT\tSUBJECT\tBUCKET\tEPOCH -> N.
--   P rd               sorted set: instance -> deadline of its first reservation
-- Numbers cross between strings and Lua in both directions many times per
-- operation, and in a batch the same few values recur across its
-- operations (a limit's arguments, the current bucket, the clock): there
-- each string is converted once per call (tonumber is glibc's strtod,
-- about 700 instructions; a batched reservation spent 7% of its server
-- time there before this cache, callgrind).  A call of one operation
-- would only pay for the cache's table, so it converts directly.
-- Integers go to redis.call as strings made here with %d: a Lua number is
-- a double, which Redis 7.0 formats with snprintf("%.17g") and Lua's own
-- concatenation with "%.14g", the slow path of printf (a reserve call
-- spent about a tenth of its server time there, callgrind).
local fmt = string.format
local N, S = tonumber, function(v) return fmt('%d', v) end
if ARGV[1] == 'batch' and #ARGV > 16 then
    local numc, strc = {}, {}
    N = function(s)
        if not s then return nil end
        local v = numc[s]
        if v == nil then
            v = tonumber(s)
            if v ~= nil then numc[s] = v end
        end
        return v
    end
    S = function(v)
        local t = strc[v]
        if t == nil then
            t = fmt('%d', v)
            strc[v] = t
        end
        return t
    end
end

local op = ARGV[1]
local now = N(ARGV[2])
if now == 0 then now = N(redis.call('TIME')[1]) end
local P = ARGV[3]

local function bucket_of(t, res) return math.floor(t / res) end

-- The window's buckets in it, oldest first: {bucket, count, field}; the
-- reserved count; the start of the oldest bucket left in the hash (nil: none).
local function read_window(wk, res, nb, prune)
    local h = redis.call('HGETALL', wk)
    local bs, reserved, stale, oldest = {}, 0, {}, nil
    local first = bucket_of(now, res) - nb + 1
    for i = 1, #h, 2 do
        local f, v = h[i], N(h[i + 1])
        local t = N(f)
        if f == 'r' then reserved = v
        elseif t then
            local b = bucket_of(t, res)
            if b >= first then
                if v > 0 then bs[#bs + 1] = { b, v, f } end
                if not oldest or t < oldest then oldest = t end
            elseif prune then stale[#stale + 1] = f
            elseif not oldest or t < oldest then oldest = t end
        end
    end
    if #stale > 0 then redis.call('HDEL', wk, unpack(stale)) end
    table.sort(bs, function(x, y) return x[1] < y[1] end)
    return bs, reserved, oldest
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

-- max and its source: 0 default, 1 directory, 2 operator.  none: the
-- window says the subject has no override (its 'x'), so none is read.
local function effective(okey, max, max_override, dir_max, none)
    local o = not none and redis.call('HMGET', okey, 'max', 'until') or {}
    if o[1] then
        local u = N(o[2]) or 0
        if u == 0 or u > now then return N(o[1]), 2 end
    end
    if dir_max >= 0 then return math.min(dir_max, max_override), 1 end
    return max, 0
end

local SLOT = 60 -- seconds of deadlines per rs: hash

local function slot_key(deadline) return fmt('%srs:%d', P, math.floor(deadline / SLOT)) end

-- A transaction's record as an older version wrote it, a key of its own:
-- its reservations {LIMIT\tSUBJECT\tBUCKET\tEPOCH, N}, and whether it exists.
local function old_record(ik)
    local out = {}
    local r = redis.pcall('GET', ik)
    if type(r) == 'table' and r.err then
        local h = redis.call('HGETALL', ik) -- the oldest version's hash
        for i = 1, #h, 2 do out[#out + 1] = { h[i], N(h[i + 1]) } end
        return out, true
    elseif r then
        for f, n in string.gmatch(r, '([^\n]*)\t(%d+)\n') do out[#out + 1] = { f, N(n) } end
        return out, true
    end
    return out, false
end

-- Settles an instance (deadline: its rd score, nil if it has none): keeps
-- at most `keep` per (limit, subject), newest buckets given back first; a
-- bucket reset since (another epoch) or gone is not touched.  logs, when a
-- table, gets {limit, subject, released}.
local function settle(rd, inst, deadline, keep, logs)
    local h = {}
    local line = deadline and redis.call('HGET', slot_key(deadline), inst)
    if line then
        for f, n in string.gmatch(line, '([^\n]*)\t(%d+)\n') do h[#h + 1] = { f, N(n) } end
        redis.call('HDEL', slot_key(deadline), inst)
    else
        local ik = P .. 'r:' .. inst
        local found
        h, found = old_record(ik)
        if found then redis.call('DEL', ik) end
    end
    local groups, order = {}, {}
    for _, x in ipairs(h) do
        local l, s, b, e = string.match(x[1], '^([^\t]*)\t(.*)\t(%-?%d+)\t(%d+)$')
        if l then
            local g = l .. '\t' .. s
            if not groups[g] then
                groups[g] = { l = l, s = s, items = {}, total = 0 }
                order[#order + 1] = g
            end
            local n = x[2]
            table.insert(groups[g].items, { b = N(b), f = b, e = N(e), n = n })
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
        local w = redis.call('HMGET', wk, 'e', 'r', 'u')
        local epoch = N(w[1] or '0')
        local settled, freed = 0, 0
        table.sort(x.items, function(a, b) return a.b > b.b end)
        for _, it in ipairs(x.items) do
            local g2 = math.min(give, it.n)
            if it.e == epoch then
                settled = settled + it.n
                if g2 > 0 then
                    local c = N(redis.call('HGET', wk, it.f))
                    if c then
                        if c - g2 > 0 then
                            redis.call('HINCRBY', wk, it.f, -g2)
                            freed = freed + g2
                        else
                            redis.call('HDEL', wk, it.f)
                            freed = freed + c
                        end
                    end
                end
            end
            give = give - g2
        end
        -- the sum follows its buckets ('b' may now be older than the
        -- oldest: it only has to be no later)
        if freed > 0 and w[3] then redis.call('HINCRBY', wk, 'u', -freed) end
        if settled > 0 and w[2] then
            if redis.call('HINCRBY', wk, 'r', -settled) <= 0 then redis.call('HDEL', wk, 'r') end
        end
    end
    if deadline then redis.call('ZREM', rd, inst) end
    return kept, released
end

-- A check (mode c), add (a) or reservation (r) of n for one subject:
-- {ok, max, used, remaining, next_free, source}.  K: the window, override,
-- top keys [, the instance's record as an older version named it (P
-- r:INSTANCE), deadlines]; A: resolution, buckets, max, max_override,
-- dir_max, n, subject, instance, limit\tsubject, reservation_timeout, the
-- record's margin past its slot (seconds), all strings as sent.
local function count(mode, K, A)
    local res, nb = N(A[1]), N(A[2])
    local n = N(A[6])
    local wk = K[1]
    local cb = bucket_of(now, res)
    local cur = cb * res
    local curs = S(cur)
    local h = redis.call('HMGET', wk, 'u', 'b', 'e', 'r', curs, 'x')
    local none = h[6] == '1'
    local max, src = effective(K[2], N(A[3]), N(A[4]), N(A[5]), none)
    local used, oldest = N(h[1]), N(h[2])
    local epoch, reserved, here = N(h[3]) or 0, N(h[4]) or 0, N(h[5]) or 0
    local bs, recount, _
    -- The sum holds while the oldest bucket is in the window.  Else (a
    -- bucket left it, or no sum yet: a new subject, a reset, a window
    -- written by an older version) the buckets are read and the sum made
    -- again; a count that writes drops the buckets that left.
    if used == nil or (oldest and bucket_of(oldest, res) < cb - nb + 1) then
        bs, _, oldest = read_window(wk, res, nb, mode ~= 'c')
        used = sum(bs)
        recount = true
    end
    local ok = used + n <= max
    if mode == 'c' or not ok or n == 0 then
        if recount and mode ~= 'c' and h[1] then
            -- the buckets that left were dropped: the sum and 'b' follow
            if oldest then redis.call('HSET', wk, 'u', S(used), 'b', S(oldest))
            else redis.call('HSET', wk, 'u', S(used)); redis.call('HDEL', wk, 'b') end
        end
        local nf = now
        if not ok then
            bs = bs or read_window(wk, res, nb, false)
            nf = next_free(bs, used, max, n, res, nb)
        end
        return { ok and 1 or 0, max, used, math.max(max - used, 0), nf, src }
    end
    used = used + n
    local w = { 'HSET', wk, curs, S(here + n), 'u', S(used) }
    if recount or not oldest or cur < oldest then
        oldest = (oldest and oldest < cur) and oldest or cur
        w[#w + 1] = 'b'
        w[#w + 1] = S(oldest)
    end
    if mode == 'r' then
        w[#w + 1] = 'r'
        w[#w + 1] = S(reserved + n)
    end
    if not none and src ~= 2 then
        -- no override in force: the next counts skip the lookup, until
        -- oset drops 'x' (or the window goes, with its fields)
        w[#w + 1] = 'x'
        w[#w + 1] = '1'
    end
    redis.call(unpack(w))
    if here == 0 then
        -- a new bucket: the window now lives until it leaves, and the
        -- subject is active for top (its score: the bucket's start).  The
        -- newest bucket is the current one unless the clock went back: a
        -- recount knows them all, else GT never shortens the expiry (the
        -- key has one: it was made by a recount)
        local leaves = (cb + nb) * res
        if recount then
            for _, x in ipairs(bs) do
                if (x[1] + nb) * res > leaves then leaves = (x[1] + nb) * res end
            end
            redis.call('EXPIREAT', wk, S(leaves))
        else
            redis.call('EXPIREAT', wk, S(leaves), 'GT')
        end
        redis.call('ZADD', K[3], curs, A[7])
        redis.call('EXPIREAT', K[3], S(leaves))
    end
    if mode == 'r' then
        -- A new transaction's record is a field of its deadline's slot
        -- hash, whose expiry its first record sets.  A transaction's next
        -- reservations are appended to its record, wherever it is.
        local inst, f = A[8], fmt('%s\t%s\t%d\t%d\n', A[9], curs, epoch, n)
        local deadline, line, open = now + N(A[10]), false, false
        if redis.call('ZADD', K[5], 'NX', S(deadline), inst) == 0 then
            open = true
            deadline = N(redis.call('ZSCORE', K[5], inst))
            line = redis.call('HGET', slot_key(deadline), inst)
        end
        if open and not line and redis.call('EXISTS', K[4]) == 1 then
            -- an older version's record: a string of lines, or the oldest one's hash
            local a = redis.pcall('APPEND', K[4], f)
            if type(a) == 'table' and a.err then
                redis.call('HINCRBY', K[4], fmt('%s\t%s\t%d', A[9], curs, epoch), S(n))
            end
        else
            -- the field '' (no instance is empty) marks a slot hash made
            -- with its expiry: HSET answers 2 new fields only for the first
            -- record of a slot, so the others make no EXPIREAT call (each
            -- redis.call costs about as much as the script's own work)
            local sk = slot_key(deadline)
            if redis.call('HSET', sk, inst, (line or '') .. f, '', '1') == 2 then
                redis.call('EXPIREAT', sk, S((math.floor(deadline / SLOT) + 1) * SLOT + N(A[11])))
            end
        end
    end
    local remaining = math.max(max - used, 0)
    local nf = now
    if remaining == 0 then nf = next_free(read_window(wk, res, nb, false), used, max, 1, res, nb) end
    return { 1, max, used, remaining, nf, src }
end

if op == 'count' then
    -- KEYS: as count's K; ARGV[4] mode, ARGV[5..] as count's A
    return count(ARGV[4], KEYS, { unpack(ARGV, 5) })
elseif op == 'batch' then
    -- The operations one loop turn of a node issued (counters_redis_batch.c),
    -- in order, each as its own call would run it, on one clock: the
    -- EVALSHA, TIME and the AOF's MULTI/EXEC are paid once for all.
    -- ARGV[4..]: operations one after the other, each its mode then
    --   c|a: limit, subject, resolution, buckets, max, max_override, dir_max, n
    --   r:   the same, then instance, reservation_timeout, margin
    --   s:   instance, keep (< 0: all; a commit or a release)
    -- Answers one element per operation: count's six, settle's two, or an
    -- error of that operation alone (the others still ran).
    -- K and A are filled again for each operation (count keeps neither)
    local out, i, rd, K, A = {}, 4, P .. 'rd', {}, {}
    while i <= #ARGV do
        local mode = ARGV[i]
        local ok, r
        if mode == 's' then
            local inst, keep = ARGV[i + 1], N(ARGV[i + 2])
            i = i + 3
            ok, r = pcall(function()
                local kept, released = settle(rd, inst, N(redis.call('ZSCORE', rd, inst)),
                                              keep, nil)
                return { kept, released }
            end)
        else
            local l, sj = ARGV[i + 1], ARGV[i + 2]
            local w = l .. ':' .. sj
            K[1], K[2], K[3] = P .. 'w:' .. w, P .. 'o:' .. w, P .. 't:' .. l
            A[1], A[2], A[3], A[4], A[5], A[6], A[7] = ARGV[i + 3], ARGV[i + 4], ARGV[i + 5],
                ARGV[i + 6], ARGV[i + 7], ARGV[i + 8], sj
            i = i + 9
            if mode == 'r' then
                K[4], K[5] = P .. 'r:' .. ARGV[i], rd
                A[8], A[9], A[10], A[11] = ARGV[i], l .. '\t' .. sj, ARGV[i + 1], ARGV[i + 2]
                i = i + 3
            end
            ok, r = pcall(count, mode, K, A)
        end
        if not ok then
            r = type(r) == 'table' and r.err and r or { err = 'outpost: ' .. tostring(r) }
        end
        out[#out + 1] = r
    end
    return out
elseif op == 'settle' then
    -- KEYS: instance, deadlines; ARGV[4] keep (< 0: all), ARGV[5] instance
    local d = redis.call('ZSCORE', KEYS[2], ARGV[5])
    local kept, released = settle(KEYS[2], ARGV[5], N(d), N(ARGV[4]), nil)
    return { kept, released }
elseif op == 'expire' then
    -- KEYS: deadlines; ARGV[4] most instances per call
    local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'WITHSCORES', 'LIMIT', 0,
                           N(ARGV[4]))
    local out = {}
    for i = 1, #due, 2 do
        local inst, logs = due[i], {}
        settle(KEYS[1], inst, N(due[i + 1]), 0, logs)
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
    local res, nb = N(ARGV[4]), N(ARGV[5])
    local max, src = effective(KEYS[2], N(ARGV[6]), N(ARGV[7]), -1)
    local bs, reserved = read_window(KEYS[1], res, nb, false)
    local used = sum(bs)
    return { used + 1 <= max and 1 or 0, max, used, math.max(max - used, 0),
             next_free(bs, used, max, 1, res, nb), src, reserved }
elseif op == 'reset' then
    -- KEYS: window, top; ARGV[4] window seconds, ARGV[5] subject
    local e = N(redis.call('HGET', KEYS[1], 'e') or '0')
    redis.call('DEL', KEYS[1])
    redis.call('HSET', KEYS[1], 'e', e + 1)
    redis.call('EXPIRE', KEYS[1], N(ARGV[4]))
    redis.call('ZREM', KEYS[2], ARGV[5])
    return 1
elseif op == 'oset' then
    -- KEYS: override, index; ARGV[4..]: max, until, who, reason, limit\tsubject
    redis.call('HSET', KEYS[1], 'max', ARGV[4], 'until', ARGV[5], 'set_at', now,
               'who', ARGV[6], 'reason', ARGV[7])
    redis.call('SADD', KEYS[2], ARGV[8])
    -- the subject's counts look the override up again
    local l, s = string.match(ARGV[8], '^([^\t]*)\t(.*)$')
    redis.call('HDEL', P .. 'w:' .. l .. ':' .. s, 'x')
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
    local res, nb, dmax, n, l = N(ARGV[4]), N(ARGV[5]), N(ARGV[6]),
        N(ARGV[7]), ARGV[8]
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
