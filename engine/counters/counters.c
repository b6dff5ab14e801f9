/* The RocksDB counter backend: opening the store, the limits of the
 * config and the compaction filter (counters_rocksdb.h explains the model,
 * counters_store.h the keys, counters_add.c the check-and-add,
 * counters_group.c the writes). */
#include "counters/counters_store.h"
#include "counters/rocks_hint.h"

#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int64_t real_clock(void *data)
{
    (void)data;
    return (int64_t)time(NULL);
}

int64_t op_rocks_now(op_rocks_t *c)
{
    int64_t now = c->clock(c->clock_data);
    __atomic_store_n(&c->last_now, now, __ATOMIC_RELAXED);
    return now;
}

void op_rocks_set_clock(op_rocks_t *c, op_counters_clock_fn fn, void *data)
{
    c->clock = fn ? fn : real_clock;
    c->clock_data = data;
}

/* ---- the compaction filter: old buckets go without a cron job ---- */

/* Runs on RocksDB's compaction threads, so it never calls a test clock:
 * it reads the time the loop thread saw last. */
static unsigned char filter_old_buckets(void *state, int level, const char *key, size_t klen,
                                        const char *val, size_t vlen, char **nv, size_t *nvlen,
                                        unsigned char *changed)
{
    (void)level;
    (void)nv;
    (void)nvlen;
    (void)changed;
    op_rocks_t *c = state;
    if (klen < 1 || key[0] != 'c' || vlen != 16)
        return 0;
    int64_t now = c->clock == real_clock ? (int64_t)time(NULL)
                                         : __atomic_load_n(&c->last_now, __ATOMIC_RELAXED);
    return op__get_le(val) <= 0 || op__get_le(val + 8) <= now;
}

static void filter_destroy(void *state)
{
    (void)state; /* the filter's state is the op_rocks_t, freed by op_rocks_close */
}

static const char *filter_name(void *state)
{
    (void)state;
    return "outpost.old-buckets";
}

/* ---- limits ---- */

const op__limit_t *op__limit(const op_rocks_t *c, const char *name)
{
    for (size_t i = 0; i < c->nlimits; i++)
        if (strcmp(c->limits[i].name, name) == 0)
            return &c->limits[i];
    return NULL;
}

int op_rocks_has_limit(const op_rocks_t *c, const char *limit)
{
    return op__limit(c, limit) != NULL;
}

static void free_limits(op_rocks_t *c)
{
    for (size_t i = 0; i < c->nlimits; i++)
        free(c->limits[i].name);
    free(c->limits);
    c->limits = NULL;
    c->nlimits = 0;
}

void op_rocks_configure(op_rocks_t *c, const op_counters_conf_t *cfg)
{
    free_limits(c);
    op__mem_clear(c); /* windows may change: read them again under the new limits */
    c->max_wins = cfg->cache_entries ? cfg->cache_entries : 250000;
    c->limits = op_calloc(cfg->nlimits ? cfg->nlimits : 1, sizeof *c->limits);
    for (size_t i = 0; i < cfg->nlimits; i++) {
        const op_limit_conf_t *lc = &cfg->limits[i];
        op__limit_t *l = &c->limits[c->nlimits++];
        l->name = op_strdup(lc->name);
        l->max = (int64_t)lc->max;
        l->max_override = (int64_t)(lc->max_override ? lc->max_override : lc->max);
        l->w.resolution = (int64_t)lc->resolution;
        l->w.nbuckets = (int64_t)(lc->window / lc->resolution);
    }
    c->reservation_timeout = cfg->reservation_timeout > 0 ? cfg->reservation_timeout : 1800;
    c->expired_until = 0; /* a shorter timeout may put new deadlines before it */
    /* a group being written keeps the options it started with */
    c->wopts = cfg->sync ? c->wopts_sync : c->wopts_nosync;
    c->write_timeout = cfg->write_timeout > 0 ? cfg->write_timeout : 2;
}

/* ---- open / close ---- */

/* `outpostd test` runs without the daemon, which creates state_dir. */
static void mkdir_parents(const char *path)
{
    char *dir = op_strdup(path);
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, 0750);
            *p = '/';
        }
    }
    mkdir(dir, 0750);
    free(dir);
}

static void on_timer(uv_timer_t *t)
{
    op__group_recover(t->data);
    op_rocks_expire(t->data);
}

static op_rocks_t *open_at(uv_loop_t *loop, const op_counters_conf_t *cfg, const char *path,
                              int read_only, char *err, size_t errlen)
{
    op_rocks_t *c = op_calloc(1, sizeof *c);
    c->read_only = read_only;
    c->clock = real_clock;
    /* About 100 bytes each, ~10 MB at most: reservations live from RCPT
     * to the end of the message, or reservation_timeout when abandoned. */
    c->dl_max = 100000;
    if (path != NULL) {
        c->path = op_strdup(path);
        c->remove_on_close = 1;
    } else if (cfg->path != NULL) {
        c->path = op_strdup(cfg->path);
    } else {
        c->path = op_malloc(strlen(cfg->state_dir) + sizeof "/counters");
        sprintf(c->path, "%s/counters", cfg->state_dir);
    }
    c->opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(c->opts, 1);
    rocksdb_options_set_max_open_files(c->opts, 256);
    /* RocksDB's info LOG sits in the store's directory: on a full disk its
     * failed appends trip an assertion in Debian's librocksdb (an abort).
     * Only the header it writes at open, small and at most two files. */
    rocksdb_options_set_info_log_level(c->opts, 5 /* HEADER_LEVEL */);
    rocksdb_options_set_max_log_file_size(c->opts, 1 << 20);
    rocksdb_options_set_keep_log_file_num(c->opts, 2);
    /* Counters are small; the WAL is preallocated at about this size. */
    rocksdb_options_set_write_buffer_size(c->opts, 16 << 20);
    /* Most subjects have no override: a bloom filter answers that Get
     * without reading every file. */
    c->table = rocksdb_block_based_options_create();
    rocksdb_block_based_options_set_filter_policy(c->table, rocksdb_filterpolicy_create_bloom(10));
    c->cache = rocksdb_cache_create_lru(32 << 20);
    rocksdb_block_based_options_set_block_cache(c->table, c->cache);
    rocksdb_options_set_block_based_table_factory(c->opts, c->table);
    c->filter = rocksdb_compactionfilter_create(c, filter_destroy, filter_old_buckets, filter_name);
    rocksdb_options_set_compaction_filter(c->opts, c->filter);
    /* owned by the options from here */
    rocksdb_options_set_merge_operator(c->opts, op__resv_merge_operator());
    /* a subject's next bucket write starts where its last one went */
    if (op_rocks_insert_hints(c->opts) < 0)
        op_warn("counters: this librocksdb's options are not laid out as outpostd was built "
                "for: writing without memtable insert hints (slower, still correct)");
    c->wopts_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(c->wopts_sync, 1);
    c->wopts_nosync = rocksdb_writeoptions_create();
    c->ropts = rocksdb_readoptions_create();
    op_rocks_configure(c, cfg);

    /* RocksDB counts per operation (key comparisons, ...) into a
     * thread-local perf context unless told not to; nobody reads it here.
     * For the calling thread, which is the loop's. */
    rocksdb_set_perf_level(rocksdb_disable);
    char *dberr = NULL;
    if (read_only) {
        /* RocksDB would start its info log in the store's directory,
         * moving the daemon's LOG aside: a directory of our own instead */
        char dir[] = "/tmp/outpost-rocks-log.XXXXXX";
        if (mkdtemp(dir) == NULL) {
            snprintf(err, errlen, "counters: cannot make a temporary directory: %s", strerror(errno));
            op_rocks_close(c);
            return NULL;
        }
        c->log_dir = op_strdup(dir);
        /* RocksDB would make the directory of a store that is not there */
        char current[PATH_MAX];
        snprintf(current, sizeof current, "%s/CURRENT", c->path);
        if (access(current, R_OK) != 0) {
            snprintf(err, errlen, "counters: no store to read at %s (%s)", c->path, strerror(errno));
            op_rocks_close(c);
            return NULL;
        }
        rocksdb_options_set_db_log_dir(c->opts, c->log_dir);
        c->db = rocksdb_open_for_read_only(c->opts, c->path, 0, &dberr);
    } else {
        mkdir_parents(c->path);
        c->db = rocksdb_open(c->opts, c->path, &dberr);
    }
    if (c->db == NULL) {
        snprintf(err, errlen, "counters: cannot open %s: %s", c->path, dberr ? dberr : "?");
        free(dberr);
        op_rocks_close(c);
        return NULL;
    }
    if (op__store_stamp(c, OP_VERSION, err, errlen) != 0) {
        op_rocks_close(c);
        return NULL;
    }
    op__override_index(c);
    /* the reservations' deadlines live in memory: read them from the records */
    if (op__dl_rebuild(c, INT64_MIN, NULL, NULL) < 0) {
        snprintf(err, errlen, "counters: cannot read the reservations of %s", c->path);
        op_rocks_close(c);
        return NULL;
    }
    if (loop != NULL && !read_only) {
        if (op__group_start(c, loop) != 0) {
            snprintf(err, errlen, "counters: cannot start the thread that writes %s", c->path);
            op_rocks_close(c);
            return NULL;
        }
        c->timer = op_calloc(1, sizeof *c->timer);
        uv_timer_init(loop, c->timer);
        c->timer->data = c;
        uv_timer_start(c->timer, on_timer, 1000, 1000);
        uv_unref((uv_handle_t *)c->timer); /* the daemon's lifetime is not ours to hold */
    }
    op_info("counters: %s open%s, %zu limits", c->path, read_only ? " read-only" : "", c->nlimits);
    return c;
}

op_rocks_t *op_rocks_open(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err, size_t errlen)
{
    return open_at(loop, cfg, NULL, 0, err, errlen);
}

op_rocks_t *op_rocks_open_read_only(const op_counters_conf_t *cfg, char *err, size_t errlen)
{
    return open_at(NULL, cfg, NULL, 1, err, errlen);
}

op_rocks_t *op_rocks_open_private(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                        size_t errlen)
{
    char dir[] = "/tmp/outpost-counters.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        snprintf(err, errlen, "counters: cannot make a temporary directory: %s", strerror(errno));
        return NULL;
    }
    return open_at(loop, cfg, dir, 0, err, errlen);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void free_timer(uv_handle_t *h)
{
    free(h);
}

void op_rocks_close(op_rocks_t *c)
{
    if (c == NULL)
        return;
    if (c->timer != NULL) {
        uv_timer_stop(c->timer);
        uv_close((uv_handle_t *)c->timer, free_timer);
    }
    if (c->group)
        op__group_close(c);
    if (c->db_leaked) {
        /* the writer's thread still writes with the store and its options: the
         * process ends without them */
        op_warn("counters: %s closed with a write under way", c->path);
        free_limits(c);
        op__mem_clear(c);
        op__dl_clear(c);
        return;
    }
    if (c->db != NULL)
        rocksdb_close(c->db);
    rocksdb_options_destroy(c->opts);
    if (c->table != NULL)
        rocksdb_block_based_options_destroy(c->table);
    if (c->cache != NULL)
        rocksdb_cache_destroy(c->cache);
    rocksdb_compactionfilter_destroy(c->filter);
    rocksdb_writeoptions_destroy(c->wopts_sync);
    rocksdb_writeoptions_destroy(c->wopts_nosync);
    rocksdb_readoptions_destroy(c->ropts);
    free_limits(c);
    op__mem_clear(c);
    op__dl_clear(c);
    free(c->override_hashes);
    if (c->remove_on_close)
        nftw(c->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (c->log_dir != NULL)
        nftw(c->log_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(c->log_dir);
    free(c->path);
    free(c);
}
