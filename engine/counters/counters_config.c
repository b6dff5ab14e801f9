/* counters { } and limit NAME { }: their schema rows, the rules of a
 * limit's window, and their conversion into op_counters_conf_t. */
#include "counters/counters_config.h"

#include "config/config_schema.h"

#define fail op__config_fail
#define CNT(f) offsetof(op_counters_conf_t, f)
#define LIM(f) offsetof(op_limit_conf_t, f)

static const key_def_t counters_rows[] = {
    {.key = "path", .type = T_PATH, .doc_def = "`<state_dir>/counters`",
     .off = CNT(path),
     .descr = "RocksDB directory of the counters; must be writable by the daemon's user."},
    {.key = "reservation_timeout", .type = T_DURATION, .def = "30m",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 86400, .off = CNT(reservation_timeout),
     .descr = "A reservation (`limit.reserve`) that is neither committed nor released within "
              "this time is released: the client went away or the message was rejected later."},
    {.key = "sync", .type = T_BOOL, .def = "no", .off = CNT(sync),
     .descr = "Flush the write-ahead log to disk (fsync) before answering. `no` survives a crash "
              "or `kill -9` of outpostd; `yes` also survives a power loss, at the cost of one "
              "fsync per turn of the event loop that counted (writes are committed in groups)."},
    {.key = "write_timeout", .type = T_DURATION, .def = "2s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 60, .off = CNT(write_timeout),
     .descr = "Longest wait for a group of counter writes (a stalled or frozen disk). Past it "
              "the answers that report those writes are dropped (their connections close, so "
              "Postfix applies its default action), the store is marked failing (`outpostctl "
              "status`) and counting answers `unavailable` until the write ends; keep it below "
              "the services' `deadline`."},
    {.key = "backend", .type = T_ENUM, .def = "rocksdb", .values = "rocksdb|redis",
     .off = CNT(backend),
     .descr = "Where the counts live: `rocksdb`, on this host's disk (`path`); `redis`, on the "
              "Redis server of `redis { }`, shared by every node that names it (OP7). Applied at "
              "restart ([limits.md](limits.md#counters-on-redis))."},
    {.key = "cache_size", .type = T_INTEGER, .def = "250k", .lo = 1,
     .hi = 100000000, .off = CNT(cache_entries),
     .descr = "Most (limit, subject) windows kept in memory, so that a check reads no disk "
              "(about 150 bytes each); beyond it, windows are read again from the store."},
};

static const key_def_t limit_rows[] = {
    {.key = "max", .type = T_INTEGER, .flags = F_REQUIRED, .doc_def = "required",
     .lo = 0, .hi = 1e9, .off = LIM(max),
     .descr = "Default maximum per subject within one window."},
    {.key = "window", .type = T_DURATION, .def = "24h", .lo = 1, .hi = 31 * 86400,
     .off = LIM(window), .descr = "Length of the sliding window."},
    {.key = "resolution", .type = T_DURATION, .def = "15m", .lo = 1,
     .hi = 31 * 86400, .off = LIM(resolution),
     .descr = "Bucket size: the window slides in steps of this size. Whole seconds; must divide "
              "`window`, into at most 10000 buckets."},
    {.key = "max_override", .type = T_INTEGER, .doc_def = "`max`",
     .lo = 0, .hi = 1e9, .off = LIM(max_override),
     .descr = "Highest maximum an override may give a subject: a value from the directory "
              "passed by the policy is capped at it, an `outpostctl limit set` above it is refused."},
    {.key = "backend", .type = T_ENUM, .def = "default", .values = "default|rocksdb|redis",
     .off = LIM(backend),
     .descr = "Where this limit's counts live, when not where `counters { backend }` keeps the "
              "others: e.g. a limit shared through Redis on nodes that keep the rest local. "
              "Applied at restart."},
    {.key = "on_error", .type = T_ENUM, .def = "defer", .values = "defer|accept",
     .off = LIM(on_error),
     .descr = "What a request counting against this limit gets while the counters cannot be "
              "reached (Redis down): `defer`, `nil, \"unavailable\"`, which the shipped policies "
              "answer with a 4xx; `accept`, an answer that admits the recipient without counting "
              "it, logged as a warning each time (opt-in: the limit is not enforced meanwhile)."},
};

#define RDS(f) offsetof(op_redis_conf_t, f)

static const key_def_t redis_rows[] = {
    {.key = "servers", .type = T_LIST, .doc_def = "`127.0.0.1:6379`",
     .doc_type = "list of HOST:PORT", .def = "127.0.0.1:6379", .off = RDS(servers),
     .count_off = RDS(nservers),
     .descr = "Redis servers, tried in turn until one accepts writes (ignored with `sentinels`)."},
    {.key = "sentinels", .type = T_LIST, .doc_def = "empty", .doc_type = "list of HOST:PORT",
     .off = RDS(sentinels), .count_off = RDS(nsentinels),
     .descr = "Redis Sentinels to ask for the primary of `master_name`; after a failover the "
              "counters follow the promoted replica without a restart."},
    {.key = "master_name", .type = T_STRING, .def = "mymaster", .flags = F_NONEMPTY,
     .off = RDS(master_name), .descr = "The name the Sentinels monitor the primary under."},
    {.key = "prefix", .type = T_STRING, .def = "outpost:", .off = RDS(prefix),
     .descr = "Prefix of every key the counters write, so several deployments can share a Redis."},
    {.key = "connect_timeout", .type = T_DURATION, .def = "1s", .flags = F_ABOVE_LO, .lo = 0,
     .hi = 60, .off = RDS(connect_timeout),
     .descr = "Time to connect (and ask a Sentinel) before the attempt counts as failed."},
    {.key = "command_timeout", .type = T_DURATION, .def = "1s", .flags = F_ABOVE_LO, .lo = 0,
     .hi = 60, .off = RDS(command_timeout),
     .descr = "Longest wait for one answer; past it the connection is dropped and made again "
              "and the requests waiting on it answer `unavailable`. Keep it below the services' "
              "`deadline`."},
    {.key = "reconnect_max", .type = T_DURATION, .def = "2s", .flags = F_ABOVE_LO, .lo = 0,
     .hi = 3600, .off = RDS(reconnect_max),
     .descr = "Longest wait between connection attempts (the wait starts at 50 ms and doubles)."},
    {.key = "db", .type = T_INTEGER, .def = "0", .lo = 0, .hi = 1000, .off = RDS(db),
     .descr = "Database number (`SELECT`)."},
    {.key = "password_file", .type = T_PATH, .doc_def = "none", .off = RDS(password_file),
     .descr = "File holding the password for `AUTH` (one line), read at start."},
};

/* The counters keep whole-second buckets and scan a window bucket by
 * bucket, so the window must split into a bounded number of them. */
static int check_limit(ctx_t *c, const op_conf_node_t *block, const char *where, void *obj)
{
    op_limit_conf_t *l = obj;
    const op_conf_node_t *at = op__config_find_child(block, "resolution");
    if (at == NULL)
        at = op__config_find_child(block, "window");
    if (at == NULL)
        at = block;
    double r = l->resolution, w = l->window;
    if (r != (double)(long long)r || w != (double)(long long)w)
        return fail(c, at, where, "window and resolution must be whole seconds");
    if (r > w || (long long)w % (long long)r != 0)
        return fail(c, at, where, "resolution %.0fs must divide window %.0fs", r, w);
    if (w / r > 10000)
        return fail(c, at, where, "window %.0fs / resolution %.0fs gives %.0f buckets; at most 10000",
                    w, r, w / r);
    if (l->max_override == 0)
        l->max_override = l->max;
    if (l->max_override < l->max)
        return fail(c, op__config_find_child(block, "max_override"), where,
                    "max_override %zu is below max %zu", l->max_override, l->max);
    return 0;
}

const op_conf_section_t op_counters_section = {
    .name = "counters",
    .descr = "The persistent counters behind `outpost.limit` (see [limits.md](limits.md)). Optional, "
             "at most once.",
    .keys = OP_CONF_ROWS(counters_rows), .size = sizeof(op_counters_conf_t),
};

const op_conf_section_t op_limit_section = {
    .name = "limit", .named = 1, .repeatable = 1,
    .descr = "`limit NAME { }`: a rate limit policies count against with `outpost.limit`: at most "
             "`max` per subject in any `window`, counted in buckets of `resolution`. Repeatable; "
             "names must be unique.",
    .keys = OP_CONF_ROWS(limit_rows), .size = sizeof(op_limit_conf_t), .check = check_limit,
};

const op_conf_section_t op_redis_section = {
    .name = "redis",
    .descr = "The Redis server the counters use with `counters { backend = redis }` "
             "([limits.md](limits.md#counters-on-redis)). Optional, at most once; applied at restart.",
    .keys = OP_CONF_ROWS(redis_rows), .size = sizeof(op_redis_conf_t),
};

_Static_assert(offsetof(op_limit_conf_t, line) == offsetof(op_conf_item_t, line),
               "a named section's struct begins with op_conf_item_t's fields");

void op_counters_conf_of(const op_config_t *cfg, op_counters_conf_t *out)
{
    *out = *(const op_counters_conf_t *)op_config_section(cfg, &op_counters_section);
    out->state_dir = cfg->state_dir;
    out->limits = op_config_items(cfg, &op_limit_section, &out->nlimits);
    out->redis = op_config_section(cfg, &op_redis_section);
}
