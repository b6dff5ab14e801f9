/* The counters store (counters_rocksdb.h) on a real RocksDB in a temporary
 * directory, with a clock the tests move. */
#include "counters/counters_store.h"
#include "counters/rocks_hint.h"
#include "ctest.h"
#include "core/mem.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t now_s;
static int64_t test_clock(void *data)
{
    (void)data;
    return now_s;
}

static char dir[64];
static op_limit_conf_t limits[2];
static op_counters_conf_t cfg;

#define T0 ((int64_t)1800000000 - (int64_t)1800000000 % 86400) /* a midnight UTC */

static void open_store_cfg(void)
{
    limits[0] = (op_limit_conf_t){.name = "rcpt", .max = 5, .window = 3600, .resolution = 60, .max_override = 8};
    limits[1] = (op_limit_conf_t){.name = "day", .max = 100, .window = 86400, .resolution = 900, .max_override = 100};
    cfg = (op_counters_conf_t){.state_dir = dir, .limits = limits, .nlimits = 2, .reservation_timeout = 30};
}

static op_rocks_t *open_store(void)
{
    char err[512] = "";
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/outpost-ctest-XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    open_store_cfg();
    op_rocks_t *c = op_rocks_open(NULL, &cfg, err, sizeof err);
    if (c == NULL) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    op_rocks_set_clock(c, test_clock, NULL);
    return c;
}

static const char *c_path(void)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/counters", dir);
    return p;
}

static void cleanup(op_rocks_t *c)
{
    op_rocks_close(c);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

static int64_t used(op_rocks_t *c, const char *limit, const char *subject)
{
    op_counters_answer_t a;
    CHECK_INT(op_rocks_check(c, limit, subject, 1, -1, &a), 0);
    return a.used;
}

CTEST(add_up_to_max_then_refuse)
{
    now_s = T0 + 30;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    for (int i = 1; i <= 5; i++) {
        CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
        CHECK(a.ok);
        CHECK_INT(a.used, i);
        CHECK_INT(a.remaining, 5 - i);
    }
    CHECK_INT(a.next_free, T0 + 3600); /* the last slot taken: when the first bucket leaves */
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
    CHECK(!a.ok);
    CHECK_INT(a.used, 5);
    CHECK_INT(a.max, 5);
    CHECK_INT(a.window, 3600);
    CHECK_INT(a.next_free, T0 + 3600);
    CHECK_INT(used(c, "rcpt", "bob"), 0); /* subjects are separate */
    CHECK_INT(used(c, "day", "alice"), 0); /* and limits */
    cleanup(c);
}

CTEST(all_or_nothing)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_add(c, "rcpt", "alice", 3, -1, &a);
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", 3, -1, &a), 0);
    CHECK(!a.ok);
    CHECK_INT(used(c, "rcpt", "alice"), 3);
    cleanup(c);
}

CTEST(window_slides_bucket_by_bucket)
{
    now_s = T0 + 10;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_add(c, "rcpt", "alice", 2, -1, &a);
    now_s = T0 + 600;
    op_rocks_add(c, "rcpt", "alice", 3, -1, &a);
    now_s = T0 + 3599;
    CHECK_INT(used(c, "rcpt", "alice"), 5);
    now_s = T0 + 3600; /* the first bucket has left */
    CHECK_INT(used(c, "rcpt", "alice"), 3);
    now_s = T0 + 600 + 3600;
    CHECK_INT(used(c, "rcpt", "alice"), 0);
    cleanup(c);
}

CTEST(clock_backwards_keeps_counts)
{
    now_s = T0 + 7200;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_add(c, "rcpt", "alice", 5, -1, &a);
    now_s = T0; /* two hours back */
    CHECK_INT(used(c, "rcpt", "alice"), 5);
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
    CHECK(!a.ok);
    CHECK_INT(a.next_free, T0 + 7200 + 3600);
    cleanup(c);
}

CTEST(a_new_resolution_reads_old_buckets_at_their_time)
{
    now_s = T0 + 120;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_add(c, "rcpt", "alice", 2, -1, &a); /* minute buckets */
    now_s = T0 + 300;
    op_rocks_add(c, "rcpt", "alice", 1, -1, &a);
    limits[0].resolution = 900; /* a reload: 15-minute buckets */
    op_rocks_configure(c, &cfg);
    CHECK_INT(used(c, "rcpt", "alice"), 3);
    op_rocks_add(c, "rcpt", "alice", 1, -1, &a);
    CHECK_INT(a.used, 4);
    now_s = T0 + 3599;
    CHECK_INT(used(c, "rcpt", "alice"), 4);
    now_s = T0 + 3600; /* the 15-minute bucket from T0 leaves as a whole */
    CHECK_INT(used(c, "rcpt", "alice"), 0);
    limits[0].resolution = 60; /* and back */
    now_s = T0 + 400;
    op_rocks_configure(c, &cfg);
    CHECK_INT(used(c, "rcpt", "alice"), 4);
    now_s = T0 + 3600 + 120;
    /* minute 2 has left; the add made under 15-minute buckets sits at T0
     * and has left too; the one of minute 5 stays */
    CHECK_INT(used(c, "rcpt", "alice"), 1);
    cleanup(c);
}

CTEST(survives_close_and_reopen)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_add(c, "day", "alice", 42, -1, &a);
    op_rocks_close(c);
    c = open_store();
    CHECK_INT(used(c, "day", "alice"), 42);
    cleanup(c);
}

CTEST(reserve_commit_release)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    int64_t kept, released;
    for (int i = 0; i < 5; i++)
        op_rocks_reserve(c, "rcpt", "alice", "inst.1", 1, -1, &a);
    CHECK(a.ok);
    CHECK_INT(used(c, "rcpt", "alice"), 5); /* reserved counts against the limit */
    op_rocks_reserve(c, "rcpt", "alice", "inst.2", 1, -1, &a);
    CHECK(!a.ok);
    int64_t r;
    op_rocks_reserved(c, "rcpt", "alice", &r);
    CHECK_INT(r, 5);
    CHECK_INT(op_rocks_release(c, "inst.1", &released), 0);
    CHECK_INT(released, 5);
    CHECK_INT(used(c, "rcpt", "alice"), 0); /* 5 slots back */
    CHECK_INT(op_rocks_release(c, "inst.1", &released), 0);
    CHECK_INT(released, 0); /* twice is harmless */

    for (int i = 0; i < 5; i++)
        op_rocks_reserve(c, "rcpt", "alice", "inst.3", 1, -1, &a);
    CHECK_INT(op_rocks_commit(c, "inst.3", -1, &kept, &released), 0);
    CHECK_INT(kept, 5);
    CHECK_INT(released, 0);
    CHECK_INT(op_rocks_release(c, "inst.3", &released), 0);
    CHECK_INT(released, 0); /* committed is final */
    CHECK_INT(used(c, "rcpt", "alice"), 5);
    op_rocks_reserved(c, "rcpt", "alice", &r);
    CHECK_INT(r, 0);
    cleanup(c);
}

CTEST(commit_keeps_what_postfix_accepted)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    int64_t kept, released;
    op_rocks_reserve(c, "rcpt", "alice", "i", 2, -1, &a);
    now_s += 120; /* a later bucket */
    op_rocks_reserve(c, "rcpt", "alice", "i", 2, -1, &a);
    op_rocks_reserve(c, "day", "alice", "i", 4, -1, &a);
    /* DATA: recipient_count=3, one recipient was rejected after the policy */
    CHECK_INT(op_rocks_commit(c, "i", 3, &kept, &released), 0);
    CHECK_INT(kept, 6);
    CHECK_INT(released, 2);
    CHECK_INT(used(c, "rcpt", "alice"), 3);
    CHECK_INT(used(c, "day", "alice"), 3);
    cleanup(c);
}

CTEST(reservations_expire)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_reserve(c, "rcpt", "alice", "gone", 4, -1, &a);
    op_rocks_add(c, "rcpt", "alice", 1, -1, &a);
    now_s = T0 + 29;
    CHECK_INT(op_rocks_expire(c), 0);
    CHECK_INT(used(c, "rcpt", "alice"), 5);
    now_s = T0 + 30;
    CHECK_INT(op_rocks_expire(c), 4);
    CHECK_INT(used(c, "rcpt", "alice"), 1);
    int64_t released;
    op_rocks_release(c, "gone", &released);
    CHECK_INT(released, 0);
    cleanup(c);
}

/* Recipients of one transaction share the first recipient's deadline; the
 * deadline entries of the later ones release nothing, not even a record
 * the instance made again after the first was released. */
CTEST(later_recipients_share_the_first_deadline)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "tx", 1, -1, &a), 0);
    now_s = T0 + 10;
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "tx", 2, -1, &a), 0);
    int64_t r;
    op_rocks_reserved(c, "day", "alice", &r);
    CHECK_INT(r, 3);
    now_s = T0 + 30;
    CHECK_INT(op_rocks_expire(c), 3);
    CHECK_INT(used(c, "day", "alice"), 0);
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "tx", 4, -1, &a), 0);
    now_s = T0 + 40; /* the second recipient's old entry: not this record's */
    CHECK_INT(op_rocks_expire(c), 0);
    CHECK_INT(used(c, "day", "alice"), 4);
    now_s = T0 + 60;
    CHECK_INT(op_rocks_expire(c), 4);
    CHECK_INT(used(c, "day", "alice"), 0);
    cleanup(c);
}

/* The windows in memory follow what the store holds: a reopened store
 * (after kill -9 too: every add is in the WAL before it is answered) and a
 * window dropped from memory read the same counts. */
CTEST(windows_in_memory_match_the_store)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    for (int i = 0; i < 3; i++)
        CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
    CHECK_INT(op_rocks_reserve(c, "rcpt", "alice", "m", 1, -1, &a), 0);
    op__mem_clear(c);
    CHECK_INT(used(c, "rcpt", "alice"), 4);
    int64_t released;
    CHECK_INT(op_rocks_release(c, "m", &released), 0);
    CHECK_INT(released, 1);
    CHECK_INT(used(c, "rcpt", "alice"), 3);
    op_rocks_close(c);
    c = open_store();
    CHECK_INT(used(c, "rcpt", "alice"), 3);
    CHECK_INT(op_rocks_reset(c, "rcpt", "alice"), 0);
    CHECK_INT(used(c, "rcpt", "alice"), 0);
    cleanup(c);
}

/* With a loop, adds and reservations collect in a group: reads see them at
 * once (windows in memory, records through the group), the group is
 * written on the thread pool (before the answers that report it leave,
 * engine/core/durable.c) and the loop never waits for it; closing writes
 * what is left. */
static void on_tick(uv_timer_t *t)
{
    (void)t;
}

CTEST(group_commit_with_a_loop)
{
    now_s = T0;
    char err[512] = "";
    uv_loop_t loop;
    uv_loop_init(&loop);
    if (dir[0] == '\0') {
        snprintf(dir, sizeof dir, "/tmp/outpost-ctest-XXXXXX");
        if (mkdtemp(dir) == NULL)
            abort();
    }
    open_store_cfg();
    op_rocks_t *c = op_rocks_open(&loop, &cfg, err, sizeof err);
    CHECK(c != NULL);
    op_rocks_set_clock(c, test_clock, NULL);
    op_counters_answer_t a;
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "g1", 2, -1, &a), 0);
    CHECK_INT(op_rocks_add(c, "day", "alice", 3, -1, &a), 0);
    CHECK(c->collecting != NULL && rocksdb_writebatch_count(c->pending) > 0); /* waiting for the iteration's end */
    CHECK_INT(used(c, "day", "alice"), 5);
    /* a commit in the same iteration finds the record of the group */
    int64_t kept, released;
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "g2", 3, -1, &a), 0);
    CHECK_INT(op_rocks_commit(c, "g2", 1, &kept, &released), 0);
    CHECK_INT(kept, 1);
    CHECK_INT(released, 2);
    CHECK_INT(used(c, "day", "alice"), 6);
    uv_timer_t tick; /* the loop runs only with something to wait for, as the daemon's listeners */
    uv_timer_init(&loop, &tick);
    uv_timer_start(&tick, on_tick, 0, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(c->collecting == NULL); /* handed to the pool */
    /* one under way: a reservation and its release do not wait for it */
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "g3", 1, -1, &a), 0);
    CHECK_INT(op_rocks_release(c, "g3", &released), 0);
    CHECK_INT(released, 1);
    for (int i = 0; i < 500 && (c->inflight != NULL || c->collecting != NULL); i++) {
        uv_timer_start(&tick, on_tick, 10, 0);
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(c->inflight == NULL && c->collecting == NULL); /* written */
    CHECK(!c->failing);
    /* A group the pool thread has written whose completion the loop has
     * not run yet: the store has its records and so does the group; a
     * settlement reads them once (the store as of the last settled group). */
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "g4", 2, -1, &a), 0);
    uv_timer_start(&tick, on_tick, 0, 0);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(c->inflight != NULL);
    usleep(300 * 1000); /* the thread writes meanwhile */
    CHECK_INT(op_rocks_commit(c, "g4", 1, &kept, &released), 0);
    CHECK_INT(kept, 1);
    CHECK_INT(released, 1);
    for (int i = 0; i < 500 && (c->inflight != NULL || c->collecting != NULL); i++) {
        uv_timer_start(&tick, on_tick, 10, 0);
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(c->inflight == NULL && c->collecting == NULL);
    uv_close((uv_handle_t *)&tick, NULL);
    int64_t r;
    CHECK_INT(op_rocks_reserved(c, "day", "alice", &r), 0);
    CHECK_INT(r, 2);
    CHECK_INT(op_rocks_add(c, "day", "alice", 1, -1, &a), 0);
    CHECK_INT(op_rocks_add(c, "day", "alice", 4, -1, &a), 0);
    op_rocks_close(c); /* writes the last group */
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK_INT(uv_loop_close(&loop), 0);
    c = open_store();
    CHECK_INT(used(c, "day", "alice"), 12);
    CHECK_INT(op_rocks_release(c, "g1", &released), 0);
    CHECK_INT(released, 2);
    CHECK_INT(used(c, "day", "alice"), 10);
    CHECK_INT(op_rocks_release(c, "g2", &released), 0);
    CHECK_INT(released, 0); /* committed */
    cleanup(c);
}

CTEST(reservations_expire_after_the_clock_went_back)
{
    now_s = T0 + 1000;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_reserve(c, "day", "alice", "one", 1, -1, &a);
    now_s = T0 + 2000;
    CHECK_INT(op_rocks_expire(c), 1);
    CHECK_INT(op_rocks_expire(c), 0);
    now_s = T0; /* back: the next deadline is before the last sweep */
    op_rocks_reserve(c, "day", "alice", "two", 2, -1, &a);
    op_rocks_reserve(c, "day", "alice", "three", 4, -1, &a);
    now_s = T0 + 30;
    CHECK_INT(op_rocks_expire(c), 6);
    CHECK_INT(used(c, "day", "alice"), 0);
    cleanup(c);
}

CTEST(the_sweep_resumes_where_it_stopped)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    char inst[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(inst, sizeof inst, "i%d", i);
        op_rocks_reserve(c, "day", "alice", inst, 1, -1, &a);
        if (i % 100 == 0)
            now_s++;
    }
    now_s += 31;
    CHECK_INT(op_rocks_expire(c), 100); /* the day limit allows 100 */
    CHECK_INT(c->expired_until, now_s + 1);
    CHECK_INT(op_rocks_expire(c), 0);
    cleanup(c);
}

/* The store's 't' keys (reservation deadlines past the index in memory). */
static int store_deadlines(op_rocks_t *c)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ropts);
    int n = 0;
    for (rocksdb_iter_seek(it, "t", 1); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        if (rocksdb_iter_key(it, &kl)[0] != 't')
            break;
        n++;
    }
    rocksdb_iter_destroy(it);
    return n;
}

/* A reservation writes its bucket and its record; the deadline index is in
 * memory and read again from the records when the store opens (a crash
 * loses nothing: the records are in the WAL before the answer). */
CTEST(reservation_deadlines_are_rebuilt_at_open)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "gone", 3, -1, &a), 0);
    CHECK_INT(op_rocks_reserve(c, "day", "bob", "kept", 2, -1, &a), 0);
    CHECK_INT((int64_t)op__dl_count(c), 2);
    CHECK_INT(store_deadlines(c), 0);
    op_rocks_close(c);
    c = open_store();
    CHECK_INT((int64_t)op__dl_count(c), 2);
    int64_t kept, released;
    CHECK_INT(op_rocks_commit(c, "kept", -1, &kept, &released), 0);
    CHECK_INT(kept, 2);
    CHECK_INT((int64_t)op__dl_count(c), 1); /* the commit forgot its deadline */
    now_s = T0 + 29;
    CHECK_INT(op_rocks_expire(c), 0);
    now_s = T0 + 30;
    CHECK_INT(op_rocks_expire(c), 3);
    CHECK_INT(used(c, "day", "alice"), 0);
    CHECK_INT(used(c, "day", "bob"), 2);
    CHECK_INT((int64_t)op__dl_count(c), 0);
    cleanup(c);
}

/* Past the memory bound a reservation is not indexed: the sweep reads all
 * records when the earliest of those is due, releases what is due and
 * indexes the earliest of the others again.  No 't' key either way. */
CTEST(past_the_memory_bound_the_sweep_reads_the_records)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    c->dl_max = 2;
    op_counters_answer_t a;
    char inst[16];
    for (int i = 0; i < 5; i++) {
        snprintf(inst, sizeof inst, "i%d", i);
        CHECK_INT(op_rocks_reserve(c, "day", "alice", inst, 1, -1, &a), 0);
    }
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "i0", 1, -1, &a), 0); /* indexed already */
    now_s = T0 + 10;
    CHECK_INT(op_rocks_reserve(c, "day", "alice", "late", 1, -1, &a), 0);
    CHECK_INT((int64_t)op__dl_count(c), 2);
    CHECK_INT(c->dl_spill_due, T0 + 30);
    CHECK_INT(store_deadlines(c), 0);
    int64_t kept, released;
    CHECK_INT(op_rocks_commit(c, "i1", -1, &kept, &released), 0); /* indexed */
    CHECK_INT(op_rocks_commit(c, "i4", -1, &kept, &released), 0); /* not indexed */
    CHECK_INT((int64_t)op__dl_count(c), 1);
    now_s = T0 + 29;
    CHECK_INT(op_rocks_expire(c), 0);
    CHECK_INT(c->dl_spill_due, T0 + 30);
    now_s = T0 + 30;
    CHECK_INT(op_rocks_expire(c), 4); /* i0 (2), i2, i3 */
    CHECK_INT(used(c, "day", "alice"), 3); /* i1, i4, late */
    CHECK_INT((int64_t)op__dl_count(c), 1); /* late, indexed again */
    CHECK_INT(c->dl_spill_due, INT64_MAX);
    now_s = T0 + 40;
    CHECK_INT(op_rocks_expire(c), 1);
    CHECK_INT((int64_t)op__dl_count(c), 0);
    CHECK_INT(store_deadlines(c), 0);
    cleanup(c);
}

/* The rebuild keeps the earliest deadlines when they do not all fit. */
CTEST(a_rebuild_keeps_the_earliest_deadlines)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    char inst[16];
    for (int i = 0; i < 6; i++) {
        now_s = T0 + 6 - i; /* the later in key order, the earlier the deadline */
        snprintf(inst, sizeof inst, "i%d", i);
        CHECK_INT(op_rocks_reserve(c, "day", "alice", inst, 1, -1, &a), 0);
    }
    c->dl_max = 2;
    CHECK_INT(op__dl_rebuild(c, INT64_MIN, NULL, NULL), 0);
    CHECK_INT((int64_t)op__dl_count(c), 2); /* i5 (T0 + 31), i4 (T0 + 32) */
    CHECK_INT(c->dl_spill_due, T0 + 33);
    now_s = T0 + 32;
    CHECK_INT(op_rocks_expire(c), 2);
    now_s = T0 + 36;
    CHECK_INT(op_rocks_expire(c), 4);
    CHECK_INT(used(c, "day", "alice"), 0);
    cleanup(c);
}

CTEST(overrides_directory_and_operator)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    char err[256];
    op_rocks_check(c, "rcpt", "alice", 1, 7, &a);
    CHECK_INT(a.max, 7);
    CHECK_INT(a.source, OP_MAX_DIRECTORY);
    op_rocks_check(c, "rcpt", "alice", 1, 1000, &a);
    CHECK_INT(a.max, 8); /* capped at max_override */
    op_rocks_check(c, "rcpt", "alice", 1, 2, &a);
    CHECK_INT(a.max, 2); /* a tier may also be lower */

    CHECK_INT(op_rocks_override_set(c, "rcpt", "alice", 9, 0, "root", "why", err, sizeof err),
              OP_COUNTERS_EINVAL); /* above max_override */
    CHECK_INT(op_rocks_override_set(c, "rcpt", "alice", 6, 0, "root", "", err, sizeof err),
              OP_COUNTERS_EINVAL); /* no reason */
    CHECK_INT(op_rocks_override_set(c, "nope", "alice", 6, 0, "root", "x", err, sizeof err),
              OP_COUNTERS_ENOLIMIT);
    CHECK_INT(op_rocks_override_set(c, "rcpt", "alice", 6, T0 + 100, "root", "ticket\t1\n", err,
                                       sizeof err), 0);
    op_rocks_check(c, "rcpt", "alice", 1, 2, &a);
    CHECK_INT(a.max, 6); /* the operator wins over the directory */
    CHECK_INT(a.source, OP_MAX_OPERATOR);
    now_s = T0 + 100;
    op_rocks_check(c, "rcpt", "alice", 1, -1, &a);
    CHECK_INT(a.max, 5); /* expired */
    CHECK_INT(a.source, OP_MAX_DEFAULT);
    CHECK_INT(op_rocks_override_clear(c, "rcpt", "alice"), 0);
    CHECK_INT(op_rocks_override_clear(c, "rcpt", "alice"), OP_COUNTERS_ENOTFOUND);
    cleanup(c);
}

CTEST(overrides_survive_reopen)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    char err[256];
    CHECK_INT(op_rocks_override_set(c, "rcpt", "bob", 7, 0, "root", "why", err, sizeof err), 0);
    op_rocks_close(c);
    c = open_store();
    op_rocks_check(c, "rcpt", "bob", 1, -1, &a);
    CHECK_INT(a.max, 7);
    CHECK_INT(a.source, OP_MAX_OPERATOR);
    op_rocks_check(c, "rcpt", "bobby", 1, -1, &a);
    CHECK_INT(a.max, 5);
    cleanup(c);
}

static int collect(const op_counters_override_t *o, void *data)
{
    char *out = data;
    snprintf(out + strlen(out), 512 - strlen(out), "%s/%s/%lld/%s/%s/%d;", o->limit, o->subject,
             (long long)o->max, o->who, o->reason, o->expired);
    return 0;
}

CTEST(override_list_keeps_the_audit)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    char err[256], out[512] = "";
    op_rocks_override_set(c, "rcpt", "bob", 7, 0, "admin", "ticket 1", err, sizeof err);
    op_rocks_override_set(c, "day", "carol", 50, T0 + 10, "root", "tab\there", err, sizeof err);
    op_rocks_override_list(c, NULL, collect, out);
    CHECK_STR(out, "day/carol/50/root/tab here/0;rcpt/bob/7/admin/ticket 1/0;");
    out[0] = '\0';
    now_s = T0 + 10;
    op_rocks_override_list(c, "day", collect, out);
    CHECK_STR(out, "day/carol/50/root/tab here/1;");
    cleanup(c);
}

CTEST(reset_and_top)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_add(c, "rcpt", "a", 1, -1, &a);
    op_rocks_add(c, "rcpt", "b", 4, -1, &a);
    op_rocks_add(c, "rcpt", "c", 2, -1, &a);
    op_counters_top_t t[2];
    CHECK_INT(op_rocks_top(c, "rcpt", t, 2), 2);
    CHECK_STR(t[0].subject, "b");
    CHECK_INT(t[0].used, 4);
    CHECK_STR(t[1].subject, "c");
    CHECK_INT(op_rocks_reset(c, "rcpt", "b"), 0);
    CHECK_INT(used(c, "rcpt", "b"), 0);
    CHECK_INT(op_rocks_top(c, "rcpt", t, 2), 2);
    CHECK_STR(t[0].subject, "c");
    CHECK_INT(op_rocks_top(c, "nope", t, 2), OP_COUNTERS_ENOLIMIT);
    cleanup(c);
}

/* Issue 14 item 6: a reset forgives the open reservations too.  Before
 * the fix their records stayed, and when they expired the sweep took them
 * off the buckets rebuilt after the reset: with max 5, reserve 5, reset,
 * reserve and commit 5, sweep -> used 0, and 5 more were admitted. */
CTEST(reset_forgets_open_reservations)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    int64_t kept, released;
    CHECK_INT(op_rocks_reserve(c, "rcpt", "alice", "old", 5, -1, &a), 0);
    CHECK(a.ok);
    CHECK_INT(op_rocks_reset(c, "rcpt", "alice"), 0);
    CHECK_INT(used(c, "rcpt", "alice"), 0);
    CHECK_INT(op_rocks_reserve(c, "rcpt", "alice", "new", 5, -1, &a), 0);
    CHECK(a.ok);
    CHECK_INT(op_rocks_commit(c, "new", -1, &kept, &released), 0);
    CHECK_INT(kept, 5);
    now_s = T0 + 31; /* past reservation_timeout: "old" would be released now */
    op_rocks_expire(c);
    CHECK_INT(used(c, "rcpt", "alice"), 5);
    CHECK_INT(op_rocks_release(c, "old", &released), 0);
    CHECK_INT(released, 0);
    CHECK_INT(used(c, "rcpt", "alice"), 5);
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
    CHECK(!a.ok); /* the 6th of the new window */
    int64_t resv = -1;
    CHECK_INT(op_rocks_reserved(c, "rcpt", "alice", &resv), 0);
    CHECK_INT(resv, 0);
    /* after a restart too (the index of deadlines is rebuilt from records) */
    CHECK_INT(op_rocks_reserve(c, "rcpt", "bob", "b1", 3, -1, &a), 0);
    CHECK_INT(op_rocks_reset(c, "rcpt", "bob"), 0);
    op_rocks_close(c);
    c = open_store();
    CHECK_INT(op_rocks_add(c, "rcpt", "bob", 2, -1, &a), 0);
    now_s = T0 + 100;
    op_rocks_expire(c);
    CHECK_INT(used(c, "rcpt", "bob"), 2);
    cleanup(c);
}

static size_t count_keys(op_rocks_t *c, char tag)
{
    rocksdb_iterator_t *it = rocksdb_create_iterator(c->db, c->ropts);
    size_t n = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl;
        n += rocksdb_iter_key(it, &kl)[0] == tag;
    }
    rocksdb_iter_destroy(it);
    return n;
}

CTEST(compaction_drops_old_buckets)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    op_rocks_add(c, "rcpt", "old", 1, -1, &a);
    now_s = T0 + 3000;
    op_rocks_add(c, "rcpt", "new", 1, -1, &a);
    CHECK_INT(count_keys(c, 'c'), 2);
    now_s = T0 + 3600;
    op_rocks_now(c); /* the filter reads the last time the loop saw */
    rocksdb_compact_range(c->db, NULL, 0, NULL, 0);
    CHECK_INT(count_keys(c, 'c'), 1);
    CHECK_INT(used(c, "rcpt", "new"), 1);
    cleanup(c);
}

CTEST(bad_arguments)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    CHECK_INT(op_rocks_add(c, "nope", "alice", 1, -1, &a), OP_COUNTERS_ENOLIMIT);
    CHECK_INT(op_rocks_add(c, "rcpt", "", 1, -1, &a), OP_COUNTERS_EINVAL);
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", -1, -1, &a), OP_COUNTERS_EINVAL);
    char big[OP_COUNTERS_MAX_KEY + 2];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(op_rocks_add(c, "rcpt", big, 1, -1, &a), OP_COUNTERS_EINVAL);
    CHECK_INT(op_rocks_reserve(c, "rcpt", "alice", "", 1, -1, &a), OP_COUNTERS_EINVAL);
    cleanup(c);
}

CTEST(second_open_of_the_same_store_fails)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    char err[512] = "";
    CHECK(op_rocks_open(NULL, &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "cannot open") != NULL);
    cleanup(c);
}

/* Writes (or with stamp NULL deletes) the version stamp of the closed
 * store in dir, as another outpost would have left it. */
static void set_stamp(const char *stamp)
{
    char *e = NULL;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_merge_operator(o, op__resv_merge_operator());
    rocksdb_t *db = rocksdb_open(o, c_path(), &e);
    CHECK(db != NULL && e == NULL);
    rocksdb_writeoptions_t *w = rocksdb_writeoptions_create();
    if (stamp != NULL)
        rocksdb_put(db, w, "v", 1, stamp, strlen(stamp), &e);
    else
        rocksdb_delete(db, w, "v", 1, &e);
    CHECK(e == NULL);
    rocksdb_writeoptions_destroy(w);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
}

static char *get_stamp(void)
{
    char *e = NULL;
    size_t len = 0;
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_merge_operator(o, op__resv_merge_operator());
    rocksdb_t *db = rocksdb_open_for_read_only(o, c_path(), 0, &e);
    CHECK(db != NULL && e == NULL);
    rocksdb_readoptions_t *r = rocksdb_readoptions_create();
    char *v = rocksdb_get(db, r, "v", 1, &len, &e);
    char *out = v ? strndup(v, len) : NULL;
    free(v);
    rocksdb_readoptions_destroy(r);
    rocksdb_close(db);
    rocksdb_options_destroy(o);
    return out;
}

CTEST(version_stamp_refuses_a_store_of_a_newer_format)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
    op_rocks_close(c);
    char *st = get_stamp();
    CHECK_STR(st, "1 outpost " OP_VERSION);
    free(st);

    char err[512] = "";
    set_stamp("2 outpost 9.0.0");
    CHECK(op_rocks_open(NULL, &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "written by outpost 9.0.0 in store format 2") != NULL);
    CHECK(strstr(err, "cannot read") != NULL);
    st = get_stamp();
    CHECK_STR(st, "2 outpost 9.0.0"); /* refused without touching it */
    free(st);

    set_stamp("garbage");
    CHECK(op_rocks_open(NULL, &cfg, err, sizeof err) == NULL);
    CHECK(strstr(err, "version stamp this outpost cannot read") != NULL);

    /* An older outpost of the same format, and a store from before the
     * stamp: both open, keep their counts, and get our stamp. */
    set_stamp("1 outpost 0.0.1");
    c = open_store();
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
    CHECK_INT(a.used, 2);
    op_rocks_close(c);
    set_stamp(NULL);
    c = open_store();
    CHECK_INT(op_rocks_add(c, "rcpt", "alice", 1, -1, &a), 0);
    CHECK_INT(a.used, 3);
    op_rocks_close(c);
    st = get_stamp();
    CHECK_STR(st, "1 outpost " OP_VERSION);
    free(st);
    c = open_store();
    cleanup(c);
}

/* The memtable's insert hints (rocks_hint.cc): which keys get one, and
 * under which prefix. */
CTEST(insert_hint_prefixes)
{
    op__key_t k;
    op__key_init(&k, 'c'); /* a bucket: limit 0 subject 0, without its start */
    op__key_str(&k, "rcpt");
    op__key_str(&k, "alice");
    size_t bucket_prefix = k.n;
    op__key_u64(&k, 42);
    CHECK_INT(op_rocks_hint_prefix(k.b, k.n), bucket_prefix);
    CHECK_INT(op_rocks_hint_prefix(k.b, 9), 0); /* too short to be a bucket */

    struct {
        const char *instance;
        size_t want; /* 'r' and the instance up to its second dot */
    } rows[] = {
        {"583a.6b0a6fe8.6ec56.0", 1 + strlen("583a.6b0a6fe8.")}, /* Postfix's */
        {"1f.3.a9.0", 1 + strlen("1f.3.")},                        /* bench/loadgen's */
        {"inst.1", 0},                                              /* one dot: no hint */
        {"nodots", 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        op__key_init(&k, 'r');
        op__key_str(&k, rows[i].instance);
        op__key_str(&k, "a.b"); /* dots after the instance do not count */
        op__key_str(&k, "x.y");
        op__key_u64(&k, 42);
        CHECK_INT(op_rocks_hint_prefix(k.b, k.n), rows[i].want);
    }
    op__key_init(&k, 'o'); /* overrides, the stamp: none */
    op__key_str(&k, "rcpt");
    op__key_str(&k, "a.b.c");
    CHECK_INT(op_rocks_hint_prefix(k.b, k.n), 0);
    CHECK_INT(op_rocks_hint_prefix("v", 1), 0);
}

/* The store opens with them (RocksDB names the extractor in its OPTIONS
 * file), and counts and reservations of Postfix-shaped instances, which
 * take the hinted inserts, read back right after a reopen. */
CTEST(the_store_inserts_with_hints)
{
    now_s = T0;
    op_rocks_t *c = open_store();
    op_counters_answer_t a;
    const char *inst[] = {"583a.6b0a6fe8.6ec56.0", "583a.6b0a6fe8.6ec57.0", "583b.6b0a6fe8.10.0",
                          "583a.6b0a6fe9.5.0"};
    for (int round = 0; round < 3; round++)
        for (size_t i = 0; i < 4; i++)
            CHECK_INT(op_rocks_reserve(c, "day", "alice", inst[i], 1, -1, &a), 0);
    int64_t kept, released;
    CHECK_INT(op_rocks_commit(c, inst[0], -1, &kept, &released), 0);
    CHECK_INT(kept, 3);
    CHECK_INT(op_rocks_release(c, inst[2], &released), 0);
    CHECK_INT(released, 3);
    op_rocks_close(c);

    DIR *d = opendir(c_path());
    CHECK(d != NULL);
    int named = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
        if (strncmp(e->d_name, "OPTIONS-", 8) != 0)
            continue;
        char path[512], line[512];
        snprintf(path, sizeof path, "%s/%s", c_path(), e->d_name);
        FILE *f = fopen(path, "r");
        while (f != NULL && fgets(line, sizeof line, f) != NULL)
            named |= strstr(line, "memtable_insert_with_hint_prefix_extractor=") != NULL &&
                     strstr(line, "outpost.WritePrefix") != NULL;
        if (f != NULL)
            fclose(f);
    }
    if (d != NULL)
        closedir(d);
    CHECK(named);

    c = open_store();
    CHECK_INT(used(c, "day", "alice"), 9); /* 12 reserved, 3 released */
    int64_t r;
    op_rocks_reserved(c, "day", "alice", &r);
    CHECK_INT(r, 6); /* inst[1] and inst[3] still open */
    cleanup(c);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
