/* The RocksDB counter backend: opening the store, the limits of the
 * config, the compaction filter, and writing batches: group commit on the
 * thread pool and the durability barrier that holds the answers until
 * their writes are in the log (counters_rocksdb.h explains the model,
 * counters_store.h the keys, counters_add.c the check-and-add). */
#include "counters/counters_store.h"

#include "core/log.h"
#include "core/mem.h"
#include "core/durable.h"

#include <errno.h>
#include <ftw.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

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

static int wait_inflight(op_rocks_t *c);

void op_rocks_configure(op_rocks_t *c, const op_counters_conf_t *cfg)
{
    wait_inflight(c); /* the pool's write reads the write options */
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
    rocksdb_writeoptions_set_sync(c->wopts, (unsigned char)(cfg->sync != 0));
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
    op_rocks_expire(t->data);
}

static int barrier_run(void *data);
static void group_close(op_rocks_t *c);

static op_rocks_t *open_at(uv_loop_t *loop, const op_counters_conf_t *cfg, const char *path,
                              char *err, size_t errlen)
{
    op_rocks_t *c = op_calloc(1, sizeof *c);
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
    c->wopts = rocksdb_writeoptions_create();
    c->ropts = rocksdb_readoptions_create();
    op_rocks_configure(c, cfg);

    /* RocksDB counts per operation (key comparisons, ...) into a
     * thread-local perf context unless told not to; nobody reads it here.
     * For the calling thread, which is the loop's. */
    rocksdb_set_perf_level(rocksdb_disable);
    char *dberr = NULL;
    mkdir_parents(c->path);
    c->db = rocksdb_open(c->opts, c->path, &dberr);
    if (c->db == NULL) {
        snprintf(err, errlen, "counters: cannot open %s: %s", c->path, dberr ? dberr : "?");
        free(dberr);
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
    if (loop != NULL) {
        c->group = 1;
        c->loop = loop;
        uv_mutex_init(&c->lock);
        uv_cond_init(&c->cond);
        op_durable_register(loop, barrier_run, c);
        c->timer = op_calloc(1, sizeof *c->timer);
        uv_timer_init(loop, c->timer);
        c->timer->data = c;
        uv_timer_start(c->timer, on_timer, 1000, 1000);
        uv_unref((uv_handle_t *)c->timer); /* the daemon's lifetime is not ours to hold */
    }
    op_info("counters: %s open, %zu limits", c->path, c->nlimits);
    return c;
}

op_rocks_t *op_rocks_open(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err, size_t errlen)
{
    return open_at(loop, cfg, NULL, err, errlen);
}

op_rocks_t *op_rocks_open_private(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                        size_t errlen)
{
    char dir[] = "/tmp/outpost-counters.XXXXXX";
    if (mkdtemp(dir) == NULL) {
        snprintf(err, errlen, "counters: cannot make a temporary directory: %s", strerror(errno));
        return NULL;
    }
    return open_at(loop, cfg, dir, err, errlen);
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
        group_close(c);
    if (c->db != NULL) {
        op__flush(c);
        rocksdb_close(c->db);
    }
    if (c->pending != NULL)
        rocksdb_writebatch_destroy(c->pending);
    rocksdb_options_destroy(c->opts);
    if (c->table != NULL)
        rocksdb_block_based_options_destroy(c->table);
    if (c->cache != NULL)
        rocksdb_cache_destroy(c->cache);
    rocksdb_compactionfilter_destroy(c->filter);
    rocksdb_writeoptions_destroy(c->wopts);
    rocksdb_readoptions_destroy(c->ropts);
    free_limits(c);
    op__mem_clear(c);
    op__dl_clear(c);
    free(c->override_hashes);
    if (c->group) {
        uv_mutex_destroy(&c->lock);
        uv_cond_destroy(&c->cond);
    }
    if (c->remove_on_close)
        nftw(c->path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(c->path);
    free(c);
}

static int write_only(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    char *dberr = NULL;
    rocksdb_write(c->db, c->wopts, wb, &dberr);
    if (dberr != NULL) {
        op_error("counters: write to %s failed: %s", c->path, dberr);
        free(dberr);
        op__mem_clear(c); /* memory may hold what the store refused */
        return OP_COUNTERS_EIO;
    }
    return 0;
}

static int write_batch(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    int rc = write_only(c, wb);
    rocksdb_writebatch_destroy(wb);
    return rc;
}

/* ---- group commit on the thread pool ----
 *
 * The barrier (core/durable.h) hands the iteration's group to a thread of the
 * pool, so the memtable inserts run beside the loop; the answers wait for
 * it.  One group is written at a time; the next collects meanwhile. */

struct op__group_write {
    uv_work_t req;
    op_rocks_t *c;          /* NULL once the store closed */
    rocksdb_writebatch_t *wb;
    char *err;
    int written;               /* under c->lock */
    int rc, rc_known;          /* how it went, reported once */
};

static void group_write(uv_work_t *req)
{
    struct op__group_write *w = req->data;
    op_rocks_t *c = w->c;
    rocksdb_set_perf_level(rocksdb_disable); /* per thread */
    rocksdb_write(c->db, c->wopts, w->wb, &w->err);
    uv_mutex_lock(&c->lock);
    w->written = 1;
    uv_cond_broadcast(&c->cond);
    uv_mutex_unlock(&c->lock);
}

static int group_result(op_rocks_t *c, struct op__group_write *w)
{
    if (w->rc_known)
        return w->rc;
    w->rc_known = 1;
    if (w->err == NULL)
        return w->rc = 0;
    op_error("counters: write to %s failed: %s", c->path, w->err);
    free(w->err);
    w->err = NULL;
    op__mem_clear(c); /* memory may hold what the store refused */
    return w->rc = OP_COUNTERS_EIO;
}

static void group_written(uv_work_t *req, int status)
{
    (void)status;
    struct op__group_write *w = req->data;
    op_rocks_t *c = w->c;
    if (c == NULL) { /* the store closed and reported it */
        free(w->err);
        rocksdb_writebatch_destroy(w->wb);
        free(w);
        return;
    }
    c->inflight = NULL;
    int rc = group_result(c, w);
    rocksdb_writebatch_destroy(w->wb);
    free(w);
    op_durable_done(rc);
}

/* Waits until the group under way is in the store; returns how it went
 * (reported once, here or by group_written). */
static int wait_inflight(op_rocks_t *c)
{
    struct op__group_write *w = c->inflight;
    if (w == NULL)
        return 0;
    uv_mutex_lock(&c->lock);
    while (!w->written)
        uv_cond_wait(&c->cond, &c->lock);
    uv_mutex_unlock(&c->lock);
    int rc = group_result(c, w);
    if (rc < 0)
        c->group_failed = 1;
    return rc;
}

/* The group batch stays (emptied): a caller may be filling it.  A failed
 * write also fails the barrier, whoever flushed: the answers waiting for
 * it must not leave.  The group under way is written first. */
int op__flush(op_rocks_t *c)
{
    int rc = wait_inflight(c);
    if (c->pending == NULL || rocksdb_writebatch_count(c->pending) == 0)
        return rc;
    int wrc = write_only(c, c->pending);
    rocksdb_writebatch_clear(c->pending);
    if (wrc < 0)
        c->group_failed = 1;
    return wrc < 0 ? wrc : rc;
}

static int barrier_run(void *data)
{
    op_rocks_t *c = data;
    int failed = c->group_failed;
    c->group_failed = 0;
    if (failed)
        return OP_COUNTERS_EIO; /* the held answers go; the group waits */
    if (c->pending == NULL || rocksdb_writebatch_count(c->pending) == 0)
        return 0;
    /* closing, or one request's worth: now, on this thread (a hop to the
     * pool costs a lone request more latency than the insert) */
    if (c->loop == NULL || rocksdb_writebatch_count(c->pending) <= 3)
        return op__flush(c);
    struct op__group_write *w = op_calloc(1, sizeof *w);
    w->req.data = w;
    w->c = c;
    w->wb = c->pending;
    c->pending = rocksdb_writebatch_create();
    c->inflight = w;
    uv_queue_work(c->loop, &w->req, group_write, group_written);
    return OP_DURABLE_PENDING;
}

/* The group under way ends here: its answers go (or not), and the pool's
 * completion only frees it; the last group is written on this thread. */
static void group_close(op_rocks_t *c)
{
    struct op__group_write *w = c->inflight;
    int rc = wait_inflight(c);
    if (w != NULL) {
        w->c = NULL;
        c->inflight = NULL;
        op_durable_done(rc);
    }
    c->loop = NULL;
    op_durable_register(NULL, NULL, NULL);
}

rocksdb_writebatch_t *op__batch(op_rocks_t *c)
{
    if (!c->group)
        return rocksdb_writebatch_create();
    if (c->pending == NULL)
        c->pending = rocksdb_writebatch_create();
    return c->pending;
}

void op__unused(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    if (wb != c->pending)
        rocksdb_writebatch_destroy(wb);
}

int op__write(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    if (wb == c->pending) {
        op_durable_arm(); /* written before the answer leaves */
        return 0;
    }
    int rc = op__flush(c); /* in order: the group's writes came first */
    if (rc < 0) {
        rocksdb_writebatch_destroy(wb);
        return rc;
    }
    return write_batch(c, wb);
}
