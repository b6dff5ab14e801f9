/* The RocksDB backend's writes (counters_store.h): group commit on a
 * thread of its own (counters_writer.h), a bound on a write that does not end, the failing state and
 * its recovery, and the reservation records not yet in the store.
 *
 * The loop thread never writes to RocksDB and never waits for a write
 * (issue 14: a full or frozen disk must cost only the answers that report
 * counts).  The writes of one loop iteration collect in a group of batches;
 * the durability barrier (core/durable.h) hands the group to the writer's
 * thread, one group at a time; the answers that report those writes wait
 * for it, and no others.  A group that does not end within write_timeout
 * fails its answers (their connections close, so Postfix applies its
 * default action) and marks the store failing: adds, reservations and
 * settlements answer OP_COUNTERS_EIO at once (the policy answers its 4xx)
 * until the store works again.  A write that failed (a full disk) leaves
 * RocksDB read-only (a background error its C API cannot resume), so the
 * store is closed and opened again once the filesystem has room.
 *
 * Reads do not wait either: counts come from the windows in memory
 * (counters_mem.c) and a reservation's record from the store plus the
 * records of the groups not yet written (op__rec_*), so a commit in the
 * request that reserved finds what it reserved. */
#include "counters/counters_store.h"
#include "counters/counters_writer.h"
#include "counters/rocks_guard.h"

#include "core/durable.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

typedef struct {
    char *key;
    size_t klen;
    int del;              /* deleted; else merged (n, deadline) */
    int64_t n, deadline;
} rec_op_t;

struct op__group {
    op_writer_job_t job;  /* first: the writer's job is the group */
    op_rocks_t *c;        /* NULL once the store closed or gave it up */
    uint64_t seq;
    rocksdb_t *db;        /* the thread's, in case the store goes first */
    rocksdb_writeoptions_t *wopts;
    rocksdb_writebatch_t **wb;
    size_t nwb, cap;
    rec_op_t *recs;
    size_t nrecs, rcap;
    char *err;
    int abandoned;        /* its answers were failed past write_timeout */
    uint64_t started_us;  /* handed to the writer: the write's latency metric */
    int armed;            /* has writes (a batch may stay empty: a refused add) */
};

static void group_free(op__group_t *g)
{
    for (size_t i = 0; i < g->nwb; i++)
        rocksdb_writebatch_destroy(g->wb[i]);
    for (size_t i = 0; i < g->nrecs; i++)
        free(g->recs[i].key);
    free(g->wb);
    free(g->recs);
    free(g->err);
    free(g);
}

static op__group_t *collecting(op_rocks_t *c)
{
    if (c->collecting == NULL)
        c->collecting = op_calloc(1, sizeof *c->collecting);
    return c->collecting;
}

static void add_batch(op__group_t *g, rocksdb_writebatch_t *wb)
{
    if (g->nwb == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 4;
        g->wb = op_realloc(g->wb, g->cap * sizeof *g->wb);
    }
    g->wb[g->nwb++] = wb;
}

uint64_t op__unsettled_seq(const op_rocks_t *c)
{
    if (c->collecting != NULL && c->collecting->armed)
        return c->next_seq;
    return c->inflight != NULL ? c->inflight->seq : 0;
}

int op__failing(const op_rocks_t *c)
{
    return c->failing || op_rocks_guard_fault() != NULL;
}

const char *op_rocks_health(const op_rocks_t *c)
{
    const char *fault = op_rocks_guard_fault();
    if (fault != NULL)
        return fault;
    return c->failing ? c->fail_reason : NULL;
}

static void set_failing(op_rocks_t *c, int reopen, const char *fmt, const char *what)
{
    if (!c->failing)
        op_error("counters: %s: failing, counting answers unavailable until it recovers: "
                 "%s", c->path, what);
    c->failing = 1;
    c->need_reopen |= reopen;
    snprintf(c->fail_reason, sizeof c->fail_reason, fmt, what);
}

/* ---- batches ---- */

rocksdb_writebatch_t *op__batch(op_rocks_t *c)
{
    if (!c->group)
        return rocksdb_writebatch_create();
    op__group_t *g = collecting(c);
    if (c->pending == NULL) {
        c->pending = rocksdb_writebatch_create();
        add_batch(g, c->pending);
    }
    return c->pending;
}

void op__unused(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    if (wb != c->pending)
        rocksdb_writebatch_destroy(wb);
}

static int write_now(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    char *dberr = NULL;
    rocksdb_write(c->db, c->wopts, wb, &dberr);
    rocksdb_writebatch_destroy(wb);
    if (dberr != NULL) {
        op_error("counters: write to %s failed: %s", c->path, dberr);
        free(dberr);
        op__mem_clear(c); /* memory may hold what the store refused */
        return OP_COUNTERS_EIO;
    }
    return 0;
}

/* A batch of its own (a settlement, a reset, ...) joins the group after
 * what collected so far: the group's batches are written in order. */
int op__write(op_rocks_t *c, rocksdb_writebatch_t *wb)
{
    if (!c->group || c->db == NULL)
        return c->db == NULL ? (rocksdb_writebatch_destroy(wb), OP_COUNTERS_EIO) : write_now(c, wb);
    if (c->failing) {
        if (wb != c->pending)
            rocksdb_writebatch_destroy(wb);
        return OP_COUNTERS_EIO;
    }
    if (wb != c->pending) {
        add_batch(collecting(c), wb);
        c->pending = NULL; /* later adds go after it */
    }
    collecting(c)->armed = 1;
    op_durable_arm(); /* written before the answers that report it leave */
    return 0;
}

/* ---- the records not yet in the store ---- */

static void rec_push(op_rocks_t *c, const char *key, size_t klen, int del, int64_t n,
                     int64_t deadline)
{
    if (!c->group)
        return;
    op__group_t *g = collecting(c);
    if (g->nrecs == g->rcap) {
        g->rcap = g->rcap ? 2 * g->rcap : 8;
        g->recs = op_realloc(g->recs, g->rcap * sizeof *g->recs);
    }
    rec_op_t *r = &g->recs[g->nrecs++];
    r->key = op_malloc(klen);
    memcpy(r->key, key, klen);
    r->klen = klen;
    r->del = del;
    r->n = n;
    r->deadline = deadline;
}

void op__rec_merge(op_rocks_t *c, const char *key, size_t klen, int64_t n, int64_t deadline)
{
    rec_push(c, key, klen, 0, n, deadline);
}

void op__rec_delete(op_rocks_t *c, const char *key, size_t klen)
{
    rec_push(c, key, klen, 1, 0, 0);
}

static void apply_group(const op__group_t *g, const char *key, size_t klen, int *found,
                        int64_t *n, int64_t *deadline)
{
    for (size_t i = 0; g != NULL && i < g->nrecs; i++) {
        const rec_op_t *r = &g->recs[i];
        if (r->klen != klen || memcmp(r->key, key, klen) != 0)
            continue;
        if (r->del) {
            *found = 0;
        } else if (*found) {
            *n += r->n; /* the merge keeps the first deadline */
        } else {
            *found = 1;
            *n = r->n;
            *deadline = r->deadline;
        }
    }
}

int op__rec_apply(op_rocks_t *c, const char *key, size_t klen, int found, int64_t *n,
                  int64_t *deadline)
{
    if (c->inflight != NULL && !c->inflight->abandoned)
        apply_group(c->inflight, key, klen, &found, n, deadline);
    apply_group(c->collecting, key, klen, &found, n, deadline);
    return found;
}

void op__rec_keys(op_rocks_t *c, const char *prefix, size_t plen,
                  void (*fn)(void *data, const char *key, size_t klen), void *data)
{
    const op__group_t *gs[2] = {c->inflight != NULL && !c->inflight->abandoned ? c->inflight : NULL,
                                c->collecting};
    for (int j = 0; j < 2; j++)
        for (size_t i = 0; gs[j] != NULL && i < gs[j]->nrecs; i++)
            if (gs[j]->recs[i].klen >= plen && memcmp(gs[j]->recs[i].key, prefix, plen) == 0)
                fn(data, gs[j]->recs[i].key, gs[j]->recs[i].klen);
}

static void take_snapshot(op_rocks_t *c)
{
    if (c->snap != NULL && c->db != NULL)
        rocksdb_release_snapshot(c->db, c->snap);
    c->snap = c->db != NULL && c->group ? rocksdb_create_snapshot(c->db) : NULL;
}

void op__rec_read_options(op_rocks_t *c, rocksdb_readoptions_t *ro)
{
    rocksdb_readoptions_set_snapshot(ro, c->snap);
}

/* ---- writing a group on the writer's thread ---- */

static void group_write(op_writer_job_t *job)
{
    op__group_t *g = (op__group_t *)job;
    static _Thread_local int perf_off;
    if (!perf_off) {
        rocksdb_set_perf_level(rocksdb_disable); /* per thread */
        perf_off = 1;
    }
    for (size_t i = 0; i < g->nwb && g->err == NULL; i++)
        rocksdb_write(g->db, g->wopts, g->wb[i], &g->err);
}

static void group_written(op_writer_job_t *job)
{
    op__group_t *g = (op__group_t *)job;
    op_rocks_t *c = g->c;
    if (c == NULL) { /* the store closed without it */
        group_free(g);
        return;
    }
    uv_timer_stop(c->watch);
    c->inflight = NULL;
    if (g->seq > c->settled_seq)
        c->settled_seq = g->seq;
    take_snapshot(c); /* nothing being written now: the store holds exactly what settled */
    int rc = 0;
    op_metrics_counter_write("rocksdb", uv_hrtime() / 1000 - g->started_us, g->err != NULL);
    if (g->err != NULL) {
        op_error("counters: write to %s failed: %s", c->path, g->err);
        set_failing(c, 1, "a write failed: %s", g->err);
        op__mem_clear(c); /* memory holds what the store refused */
        rc = OP_COUNTERS_EIO;
    } else if (c->failing && !c->need_reopen) {
        c->failing = 0; /* the stalled write ended: the disk works again */
        op_notice("counters: %s: writes complete again, counting resumes", c->path);
    }
    if (g->abandoned)
        op__mem_clear(c); /* its writes may be in memory or not: read the store */
    else
        op_durable_done(rc);
    group_free(g);
}

/* A group that does not end: its answers go (their connections close, so
 * Postfix applies its default action), the store is failing, and the
 * writer's thread stays with the write until the disk lets it go. */
static void on_watch(uv_timer_t *t)
{
    op_rocks_t *c = t->data;
    op__group_t *g = c->inflight;
    if (g == NULL || g->abandoned)
        return;
    g->abandoned = 1;
    char what[64];
    snprintf(what, sizeof what, "%.1fs", c->write_timeout);
    set_failing(c, 0, "a write has not completed within write_timeout (%s)", what);
    op_writer_unhold(c->writer); /* a stop need not wait for the disk */
    op_durable_done(OP_COUNTERS_EIO);
}

static void drop_collecting(op_rocks_t *c)
{
    if (c->collecting == NULL)
        return;
    if (c->collecting->armed)
        c->settled_seq = c->next_seq++; /* its number settles: nothing will be written */
    group_free(c->collecting);
    c->collecting = NULL;
    c->pending = NULL;
    op__mem_clear(c); /* memory holds writes that will not be made */
}

int op__barrier_run(void *data)
{
    op_rocks_t *c = data;
    if (c->failing || c->inflight != NULL) {
        /* inflight here: abandoned; nothing more is written behind it */
        drop_collecting(c);
        return c->failing ? OP_COUNTERS_EIO : 0;
    }
    if (c->collecting == NULL || !c->collecting->armed)
        return 0;
    op__group_t *g = c->collecting;
    c->collecting = NULL;
    c->pending = NULL;
    g->seq = c->next_seq++;
    g->c = c;
    g->db = c->db;
    g->wopts = c->wopts;
    c->inflight = g;
    uv_timer_start(c->watch, on_watch, (uint64_t)(c->write_timeout * 1000), 0);
    g->started_us = uv_hrtime() / 1000;
    op_writer_post(c->writer, &g->job);
    return OP_DURABLE_PENDING;
}

/* ---- recovery ---- */

/* Once a second: a store that failed a write is opened again when its
 * filesystem has room (RocksDB stays read-only after a write error). */
void op__group_recover(op_rocks_t *c)
{
    if (!c->failing || !c->need_reopen || c->inflight != NULL)
        return;
    if (op_rocks_guard_fault() != NULL)
        return; /* RocksDB threw: its handles cannot be closed, only left */
    struct statvfs vfs;
    if (statvfs(c->path, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < (1u << 20))
        return; /* still full: opening would fail too */
    drop_collecting(c);
    if (c->db != NULL) {
        if (c->snap != NULL)
            rocksdb_release_snapshot(c->db, c->snap);
        c->snap = NULL;
        rocksdb_close(c->db);
    }
    char *dberr = NULL;
    c->db = rocksdb_open(c->opts, c->path, &dberr);
    if (c->db == NULL) {
        op_warn("counters: %s: cannot open it again yet: %s", c->path, dberr ? dberr : "?");
        free(dberr);
        return;
    }
    take_snapshot(c);
    op__mem_clear(c);
    op__override_index(c);
    op__dl_clear(c);
    op__dl_rebuild(c, INT64_MIN, NULL, NULL);
    c->failing = 0;
    c->need_reopen = 0;
    op_notice("counters: %s: open again after a failed write, counting resumes", c->path);
}

/* ---- start and end ---- */

int op__group_start(op_rocks_t *c, uv_loop_t *loop)
{
    c->writer = op_writer_start(loop, group_write, group_written);
    if (c->writer == NULL)
        return -1;
    c->group = 1;
    c->loop = loop;
    c->next_seq = 1;
    c->watch = op_calloc(1, sizeof *c->watch);
    uv_timer_init(loop, c->watch);
    c->watch->data = c;
    uv_unref((uv_handle_t *)c->watch);
    take_snapshot(c);
    op_durable_register(loop, op__barrier_run, c);
    return 0;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* Closing (the daemon stops) waits for the group being written, at most
 * write_timeout (the one wait of the loop thread, at the end); one that
 * does not end is left to the writer's thread: its answers fail, and the
 * store is not closed under it (the process ends anyway).  Then the
 * writer's thread ends, and what collected is written on this thread,
 * unless the store is failing. */
void op__group_close(op_rocks_t *c)
{
    op__group_t *g = c->inflight;
    if (g != NULL) {
        /* an abandoned group's answers failed already: no more waiting */
        int ended = op_writer_wait(c->writer, g->abandoned ? 0 : c->write_timeout);
        g->c = NULL; /* its report (op_writer_stop below) frees it */
        c->inflight = NULL;
        if (ended && g->err != NULL) {
            op_error("counters: write to %s failed: %s", c->path, g->err);
            c->failing = 1;
        }
        if (!g->abandoned)
            op_durable_done(ended && g->err == NULL ? 0 : OP_COUNTERS_EIO);
        if (!ended)
            c->db_leaked = 1; /* its thread may still write with it */
    }
    if (op_writer_stop(c->writer, 0) != 0)
        c->db_leaked = 1;
    c->writer = NULL;
    int rc = 0;
    if (c->collecting != NULL && !c->failing && !c->db_leaked && c->db != NULL) {
        for (size_t i = 0; i < c->collecting->nwb && rc == 0; i++) {
            rc = write_now(c, c->collecting->wb[i]);
            c->collecting->wb[i] = rocksdb_writebatch_create(); /* write_now destroyed it */
        }
    }
    if (c->collecting != NULL) {
        group_free(c->collecting);
        c->collecting = NULL;
        c->pending = NULL;
    }
    c->group_close_rc = rc;
    if (c->snap != NULL && !c->db_leaked && c->db != NULL)
        rocksdb_release_snapshot(c->db, c->snap);
    c->snap = NULL;
    c->loop = NULL;
    op_durable_register(NULL, NULL, NULL);
    uv_timer_stop(c->watch);
    uv_close((uv_handle_t *)c->watch, free_handle);
    c->watch = NULL;
}
