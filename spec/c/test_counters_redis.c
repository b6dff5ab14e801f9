/* The Redis backend through the counters handle (counters.h), against the
 * harness's real redis-server (REDIS_PORT in build/harness/env): what a
 * request waits for, the operator's call form, a server that is not
 * there (unavailable at once; on_error = accept), and close completing
 * what is in flight.  Needs `spec/harness/harness.sh up`. */
#include "counters/backend.h"
#include "counters/counters_redis.h"
#include "counters/counters_redis_store.h" /* RBATCH_MAX */
#include "core/mem.h"
#include "ctest.h"
#include "ctest_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static uv_loop_t loop;
static char server[64];
static char prefix[64];
static op_limit_conf_t limits[2];
static op_redis_conf_t rconf;
static op_counters_conf_t cfg;
static char *servers[1];

static void setup(const char *addr)
{
    int port = ctest_harness_port("REDIS_PORT");
    snprintf(server, sizeof server, "%s", addr != NULL ? addr : "");
    if (addr == NULL)
        snprintf(server, sizeof server, "127.0.0.1:%d", port);
    snprintf(prefix, sizeof prefix, "ctest-%d:", (int)getpid());
    servers[0] = server;
    rconf = (op_redis_conf_t){.servers = servers, .nservers = 1, .master_name = "mymaster",
                              .prefix = prefix, .connect_timeout = 1, .command_timeout = 1,
                              .reconnect_max = 0.2};
    limits[0] = (op_limit_conf_t){.name = "rcpt", .max = 3, .window = 3600, .resolution = 60,
                                  .max_override = 10};
    limits[1] = (op_limit_conf_t){.name = "open", .max = 3, .window = 3600, .resolution = 60,
                                  .max_override = 3, .on_error = OP_LIMIT_ON_ERROR_ACCEPT};
    cfg = (op_counters_conf_t){.reservation_timeout = 60, .backend = OP_COUNTERS_BACKEND_REDIS,
                               .limits = limits, .nlimits = 2, .redis = &rconf, .state_dir = "/tmp"};
    uv_loop_init(&loop);
}

typedef struct {
    op_counters_call_t call;
    int done;
} wait_t;

static void on_done(op_counters_call_t *call)
{
    ((wait_t *)call->data)->done = 1;
}

/* Starts an operation through start and waits for it: its rc. */
#define RUN(w, expr)                                                                  \
    do {                                                                              \
        memset(&(w), 0, sizeof(w));                                                   \
        (w).call.cb = on_done;                                                        \
        (w).call.data = &(w);                                                         \
        int rc_ = (expr);                                                             \
        if (rc_ == OP_COUNTERS_STARTED) {                                             \
            CHECK(ctest_run_until(&loop, &(w).done, 5));                              \
            rc_ = (w).call.rc;                                                        \
        }                                                                             \
        (w).call.rc = rc_;                                                            \
    } while (0)

typedef struct {
    op_counters_admin_t a;
    int done;
} admin_wait_t;

static void on_admin_done(op_counters_admin_t *a)
{
    ((admin_wait_t *)a->data)->done = 1;
}

static int admin(op_counters_t *c, admin_wait_t *w)
{
    w->a.cb = on_admin_done;
    w->a.data = w;
    w->done = 0;
    int rc = op_counters_admin(c, &w->a);
    if (rc == OP_COUNTERS_STARTED) {
        CHECK(ctest_run_until(&loop, &w->done, 5));
        rc = w->a.rc;
    }
    return rc;
}

static void finish(op_counters_t *c)
{
    op_counters_close(c);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

CTEST(add_reserve_commit_release_on_redis)
{
    setup(NULL);
    char err[256];
    op_counters_t *c = op_counters_open(&loop, &cfg, err, sizeof err);
    CHECK(c != NULL);
    CHECK(op_counters_may_wait(c));
    CHECK_STR(op_counters_backend_name(c), "redis");
    wait_t w;
    /* misuse is answered at once */
    RUN(w, op_counters_add(c, "nope", "alice", 1, -1, &w.call));
    CHECK_INT(w.call.rc, OP_COUNTERS_ENOLIMIT);
    RUN(w, op_counters_add(c, "rcpt", "", 1, -1, &w.call));
    CHECK_INT(w.call.rc, OP_COUNTERS_EINVAL);
    for (int i = 1; i <= 3; i++) {
        RUN(w, op_counters_add(c, "rcpt", "alice", 1, -1, &w.call));
        CHECK_INT(w.call.rc, 0);
        CHECK_INT(w.call.answer.ok, 1);
        CHECK_INT(w.call.answer.used, i);
    }
    RUN(w, op_counters_add(c, "rcpt", "alice", 1, -1, &w.call));
    CHECK_INT(w.call.answer.ok, 0);
    CHECK_INT(w.call.answer.used, 3);
    CHECK_INT(w.call.answer.window, 3600);
    CHECK(w.call.answer.next_free > 0);
    /* a directory maximum, capped at max_override */
    RUN(w, op_counters_check(c, "rcpt", "alice", 1, 50, &w.call));
    CHECK_INT(w.call.answer.max, 10);
    CHECK_INT(w.call.answer.source, OP_MAX_DIRECTORY);
    /* reserve, commit keeping 1 of 2, release of a settled instance gives nothing */
    RUN(w, op_counters_reserve(c, "rcpt", "bob", "I1", 2, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    RUN(w, op_counters_commit(c, "I1", 1, &w.call));
    CHECK_INT(w.call.committed, 1);
    CHECK_INT(w.call.released, 1);
    RUN(w, op_counters_release(c, "I1", &w.call));
    CHECK_INT(w.call.released, 0);
    RUN(w, op_counters_check(c, "rcpt", "bob", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 1);
    /* the longest subject and instance: a command beyond its inline room */
    char longs[OP_COUNTERS_MAX_KEY + 1], longi[OP_COUNTERS_MAX_KEY + 1];
    memset(longs, 's', OP_COUNTERS_MAX_KEY);
    memset(longi, 'i', OP_COUNTERS_MAX_KEY);
    longs[OP_COUNTERS_MAX_KEY] = longi[OP_COUNTERS_MAX_KEY] = '\0';
    RUN(w, op_counters_reserve(c, "rcpt", longs, longi, 2, -1, &w.call));
    CHECK_INT(w.call.rc, 0);
    CHECK_INT(w.call.answer.used, 2);
    RUN(w, op_counters_commit(c, longi, 1, &w.call));
    CHECK_INT(w.call.committed, 1);
    CHECK_INT(w.call.released, 1);
    RUN(w, op_counters_check(c, "rcpt", longs, 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 1);
    finish(c);
}

CTEST(the_operators_calls_on_redis)
{
    setup(NULL);
    char err[256];
    op_counters_t *c = op_counters_open(&loop, &cfg, err, sizeof err);
    wait_t w;
    RUN(w, op_counters_reserve(c, "rcpt", "carol", "I2", 2, -1, &w.call));
    admin_wait_t a = {0};
    a.a.op = OP_ADMIN_SHOW;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "carol");
    CHECK_INT(admin(c, &a), 0);
    CHECK_INT(a.a.answer.used, 2);
    CHECK_INT(a.a.reserved, 2);
    memset(&a, 0, sizeof a);
    a.a.op = OP_ADMIN_OVERRIDE_SET;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "carol");
    a.a.max = 11;
    strcpy(a.a.reason, "r");
    CHECK_INT(admin(c, &a), OP_COUNTERS_EINVAL); /* above max_override */
    CHECK(strstr(a.a.err, "max_override") != NULL);
    a.a.max = 5;
    strcpy(a.a.who, "tester");
    strcpy(a.a.reason, "ticket\t1");
    CHECK_INT(admin(c, &a), 0);
    memset(&a, 0, sizeof a);
    a.a.op = OP_ADMIN_OVERRIDE_LIST;
    CHECK_INT(admin(c, &a), 0);
    CHECK_INT((int)a.a.noverrides, 1);
    CHECK_STR(a.a.overrides[0].subject, "carol");
    CHECK_STR(a.a.overrides[0].reason, "ticket 1");
    CHECK_INT(a.a.overrides[0].max, 5);
    op_counters_admin_free(&a.a);
    RUN(w, op_counters_check(c, "rcpt", "carol", 1, -1, &w.call));
    CHECK_INT(w.call.answer.max, 5);
    CHECK_INT(w.call.answer.source, OP_MAX_OPERATOR);
    memset(&a, 0, sizeof a);
    a.a.op = OP_ADMIN_TOP;
    strcpy(a.a.limit, "rcpt");
    a.a.n = 5;
    CHECK_INT(admin(c, &a), 0);
    CHECK_INT((int)a.a.ntop, 1);
    CHECK_STR(a.a.top[0].subject, "carol");
    CHECK_INT(a.a.top[0].max, 5);
    op_counters_admin_free(&a.a);
    memset(&a, 0, sizeof a);
    a.a.op = OP_ADMIN_RESET;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "carol");
    CHECK_INT(admin(c, &a), 0);
    /* the transaction reserved before the reset gives nothing back into the new window */
    RUN(w, op_counters_add(c, "rcpt", "carol", 1, -1, &w.call));
    RUN(w, op_counters_release(c, "I2", &w.call));
    CHECK_INT(w.call.released, 2);
    RUN(w, op_counters_check(c, "rcpt", "carol", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 1);
    memset(&a, 0, sizeof a);
    a.a.op = OP_ADMIN_OVERRIDE_CLEAR;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "carol");
    CHECK_INT(admin(c, &a), 0);
    CHECK_INT(admin(c, &a), OP_COUNTERS_ENOTFOUND);
    /* the default again; then an override set after counts that found
     * none (and so skip the lookup, counters_redis.lua's 'x') holds at once */
    RUN(w, op_counters_add(c, "rcpt", "carol", 1, -1, &w.call));
    CHECK_INT(w.call.answer.max, 3);
    CHECK_INT(w.call.answer.source, OP_MAX_DEFAULT);
    RUN(w, op_counters_add(c, "rcpt", "carol", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 3); /* full */
    memset(&a, 0, sizeof a);
    a.a.op = OP_ADMIN_OVERRIDE_SET;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "carol");
    a.a.max = 4;
    strcpy(a.a.reason, "r2");
    CHECK_INT(admin(c, &a), 0);
    RUN(w, op_counters_add(c, "rcpt", "carol", 1, -1, &w.call));
    CHECK_INT(w.call.answer.ok, 1);
    CHECK_INT(w.call.answer.max, 4);
    CHECK_INT(w.call.answer.source, OP_MAX_OPERATOR);
    memset(&a, 0, sizeof a);
    a.a.op = OP_ADMIN_OVERRIDE_CLEAR;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "carol");
    CHECK_INT(admin(c, &a), 0);
    finish(c);
}

CTEST(a_server_that_is_not_there)
{
    setup("127.0.0.1:1"); /* nothing listens on port 1 */
    char err[256];
    op_counters_t *c = op_counters_open(&loop, &cfg, err, sizeof err);
    CHECK(c != NULL);
    wait_t w;
    /* the first waits for the connection and fails with it */
    RUN(w, op_counters_add(c, "rcpt", "alice", 1, -1, &w.call));
    CHECK_INT(w.call.rc, OP_COUNTERS_EIO);
    CHECK(op_counters_health(c) != NULL);
    /* while it backs off, at once */
    int rc = op_counters_add(c, "rcpt", "alice", 1, -1, &w.call);
    CHECK_INT(rc, OP_COUNTERS_EIO);
    /* on_error = accept: admitted, uncounted */
    memset(&w, 0, sizeof w);
    rc = op_counters_add(c, "open", "alice", 1, -1, &w.call);
    CHECK_INT(rc, 0);
    CHECK_INT(w.call.answer.ok, 1);
    CHECK_INT(w.call.answer.used, 0);
    finish(c);
}

CTEST(close_completes_what_is_in_flight)
{
    setup(NULL);
    char err[256];
    op_counters_t *c = op_counters_open(&loop, &cfg, err, sizeof err);
    wait_t w[4];
    for (int i = 0; i < 4; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].call.cb = on_done;
        w[i].call.data = &w[i];
        CHECK_INT(op_counters_add(c, "rcpt", "dave", 1, -1, &w[i].call), OP_COUNTERS_STARTED);
    }
    op_counters_close(c);
    for (int i = 0; i < 4; i++) {
        CHECK_INT(w[i].done, 1);
        CHECK_INT(w[i].call.rc, OP_COUNTERS_ECANCELLED);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* ---- one loop turn's operations in one call of the script ---- */

typedef struct {
    wait_t w;
    int order, *next;
} turn_t;

static void on_turn_done(op_counters_call_t *call)
{
    turn_t *t = call->data;
    t->w.done = 1;
    t->order = (*t->next)++;
}

static long long evalsha_calls(redisContext *rc)
{
    redisReply *r = redisCommand(rc, "INFO commandstats");
    long long n = 0;
    const char *p = r != NULL && r->type == REDIS_REPLY_STRING ? strstr(r->str, "cmdstat_evalsha:calls=") : NULL;
    if (p != NULL)
        n = atoll(p + strlen("cmdstat_evalsha:calls="));
    freeReplyObject(r);
    return n;
}

/* Started in one turn: 8 reservations of one subject racing for its 3
 * slots (rcpt: 3 an hour), beside adds of a subject already over its limit
 * and of one under it, a check, and an add whose window key is broken (a
 * string: the script's HMGET fails).  They go as one EVALSHA per
 * RBATCH_MAX of them (the sweep may add one more meanwhile), run in the order they were started, and
 * each gets its own answer: exactly 3 of the 8 reservations, the full
 * subject refused, the broken one alone failed (EIO), the others counted. */
CTEST(one_turns_operations_go_as_one_call)
{
    setup(NULL);
    char err[256];
    op_counters_t *c = op_counters_open_private(&loop, &cfg, err, sizeof err);
    CHECK(c != NULL);
    wait_t w;
    for (int i = 0; i < 3; i++)
        RUN(w, op_counters_add(c, "rcpt", "full", 1, -1, &w.call)); /* warms the connection too */
    CHECK_INT(w.call.answer.used, 3);
    int port = atoi(strrchr(server, ':') + 1);
    redisContext *rc = redisConnect("127.0.0.1", port);
    CHECK(rc != NULL && rc->err == 0);
    /* the private prefix: outpostd test's keys, found from the full subject's window */
    redisReply *k = redisCommand(rc, "KEYS %stest-%d-*:w:rcpt:full", prefix, (int)getpid());
    CHECK(k != NULL && k->type == REDIS_REPLY_ARRAY && k->elements == 1);
    char broken[256];
    snprintf(broken, sizeof broken, "%s", k->element[0]->str);
    strcpy(strstr(broken, ":w:rcpt:full") + strlen(":w:rcpt:"), "broken");
    freeReplyObject(k);
    freeReplyObject(redisCommand(rc, "SET %s x EX 60", broken));
    long long before = evalsha_calls(rc);

    enum { NR = 8, NOPS = NR + 4 };
    turn_t t[NOPS];
    int next = 0;
    memset(t, 0, sizeof t);
    for (int i = 0; i < NOPS; i++) {
        t[i].w.call.cb = on_turn_done;
        t[i].w.call.data = &t[i];
        t[i].next = &next;
    }
    char inst[NR][16];
    for (int i = 0; i < NR; i++) {
        snprintf(inst[i], sizeof inst[i], "B%d", i);
        CHECK_INT(op_counters_reserve(c, "rcpt", "race", inst[i], 1, -1, &t[i].w.call),
                  OP_COUNTERS_STARTED);
    }
    CHECK_INT(op_counters_add(c, "rcpt", "full", 1, -1, &t[NR].w.call), OP_COUNTERS_STARTED);
    CHECK_INT(op_counters_add(c, "rcpt", "under", 2, -1, &t[NR + 1].w.call), OP_COUNTERS_STARTED);
    CHECK_INT(op_counters_add(c, "rcpt", "broken", 1, -1, &t[NR + 2].w.call), OP_COUNTERS_STARTED);
    CHECK_INT(op_counters_check(c, "rcpt", "under", 2, -1, &t[NR + 3].w.call), OP_COUNTERS_STARTED);
    for (int i = 0; i < NOPS; i++)
        CHECK(ctest_run_until(&loop, &t[i].w.done, 5));
    long long calls = evalsha_calls(rc) - before, batches = (NOPS + RBATCH_MAX - 1) / RBATCH_MAX;
    CHECK(calls >= batches && calls <= batches + 1); /* not one per operation */
    CHECK(batches < NOPS);
    int won = 0;
    for (int i = 0; i < NR; i++) {
        CHECK_INT(t[i].order, i); /* answered in the order started */
        CHECK_INT(t[i].w.call.rc, 0);
        CHECK_INT(t[i].w.call.answer.ok, i < 3);
        CHECK_INT(t[i].w.call.answer.used, i < 3 ? i + 1 : 3);
        won += t[i].w.call.answer.ok;
    }
    CHECK_INT(won, 3);
    CHECK_INT(t[NR].w.call.rc, 0);
    CHECK_INT(t[NR].w.call.answer.ok, 0);
    CHECK_INT(t[NR].w.call.answer.used, 3);
    CHECK_INT(t[NR + 1].w.call.rc, 0);
    CHECK_INT(t[NR + 1].w.call.answer.ok, 1);
    CHECK_INT(t[NR + 1].w.call.answer.used, 2);
    CHECK_INT(t[NR + 2].w.call.rc, OP_COUNTERS_EIO);
    CHECK_INT(t[NR + 3].w.call.rc, 0);
    CHECK_INT(t[NR + 3].w.call.answer.ok, 0); /* 2 more do not fit after the add of 2 */
    CHECK_INT(t[NR + 3].w.call.answer.used, 2);

    /* commits and releases of one turn, batched too: the winners commit,
     * one releases; the race's subject keeps 2 */
    memset(t, 0, sizeof t);
    next = 0;
    for (int i = 0; i < 3; i++) {
        t[i].w.call.cb = on_turn_done;
        t[i].w.call.data = &t[i];
        t[i].next = &next;
    }
    CHECK_INT(op_counters_commit(c, inst[0], 1, &t[0].w.call), OP_COUNTERS_STARTED);
    CHECK_INT(op_counters_release(c, inst[1], &t[1].w.call), OP_COUNTERS_STARTED);
    CHECK_INT(op_counters_commit(c, inst[2], 1, &t[2].w.call), OP_COUNTERS_STARTED);
    for (int i = 0; i < 3; i++)
        CHECK(ctest_run_until(&loop, &t[i].w.done, 5));
    CHECK_INT(t[0].w.call.committed, 1);
    CHECK_INT(t[1].w.call.released, 1);
    CHECK_INT(t[2].w.call.committed, 1);
    RUN(w, op_counters_check(c, "rcpt", "race", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    freeReplyObject(redisCommand(rc, "DEL %s", broken));
    redisFree(rc);
    finish(c);
}

/* ---- the window slides (the backend on its own, on a test clock) ---- */

static int64_t test_now;

static int64_t test_clock(void *data)
{
    (void)data;
    return test_now;
}


/* rcpt: 3 per 3600 s in buckets of 60 s.  A count reads the window's sum,
 * which must follow the buckets as they leave the window, as a commit gives
 * some back, and as a reset clears them; a window written by an older
 * version (buckets, no sum) counts the same, and a transaction's record
 * an older version wrote (a hash) still settles. */
CTEST(the_window_slides_on_redis)
{
    setup(NULL);
    const op_counters_backend_t *b = &op_counters_redis;
    char err[256];
    void *s = b->open(&loop, &cfg, 0, err, sizeof err);
    CHECK(s != NULL);
    op_redis_set_clock(s, test_clock, NULL);
    wait_t w;
    test_now = 1800000000; /* a bucket's first second */
    RUN(w, b->add(s, "rcpt", "fay", 2, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    test_now += 120;
    RUN(w, b->reserve(s, "rcpt", "fay", "K1", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 3);
    CHECK_INT(w.call.answer.remaining, 0);
    CHECK_INT(w.call.answer.next_free, 1800000000 + 3600); /* the first bucket leaves */
    RUN(w, b->add(s, "rcpt", "fay", 1, -1, &w.call));
    CHECK_INT(w.call.answer.ok, 0);
    CHECK_INT(w.call.answer.next_free, 1800000000 + 3600);
    /* the first bucket leaves: 1 used (the reservation), 2 fit */
    test_now = 1800000000 + 3600;
    RUN(w, b->check(s, "rcpt", "fay", 2, -1, &w.call));
    CHECK_INT(w.call.answer.ok, 1);
    CHECK_INT(w.call.answer.used, 1);
    RUN(w, b->add(s, "rcpt", "fay", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    /* the commit gives back the reservation's bucket (now the oldest) */
    RUN(w, b->commit(s, "K1", 0, &w.call));
    CHECK_INT(w.call.released, 1);
    RUN(w, b->add(s, "rcpt", "fay", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    /* an hour on, all have left */
    test_now += 3600;
    RUN(w, b->add(s, "rcpt", "fay", 3, -1, &w.call));
    CHECK_INT(w.call.answer.ok, 1);
    CHECK_INT(w.call.answer.used, 3);
    /* a reset, then counting from nothing */
    admin_wait_t a = {0};
    a.a.op = OP_ADMIN_RESET;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "fay");
    a.a.cb = on_admin_done;
    a.a.data = &a;
    CHECK_INT(b->admin(s, &a.a), OP_COUNTERS_STARTED);
    CHECK(ctest_run_until(&loop, &a.done, 5));
    CHECK_INT(a.a.rc, 0);
    RUN(w, b->add(s, "rcpt", "fay", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 1);

    /* a window as an older version wrote it: bucket fields only */
    redisContext *rc = redisConnect("127.0.0.1", atoi(strrchr(server, ':') + 1));
    CHECK(rc != NULL && rc->err == 0);
    char key[128];
    snprintf(key, sizeof key, "%sw:rcpt:gus", prefix);
    test_now = 1800000000;
    redisReply *r = redisCommand(rc, "HSET %s 1799996460 1 1799999940 1 r 0", key);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = redisCommand(rc, "EXPIRE %s 7200", key);
    freeReplyObject(r);
    RUN(w, b->check(s, "rcpt", "gus", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    RUN(w, b->add(s, "rcpt", "gus", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 3);
    RUN(w, b->add(s, "rcpt", "gus", 1, -1, &w.call));
    CHECK_INT(w.call.answer.ok, 0);
    CHECK_INT(w.call.answer.next_free, 1799996460 + 3600);
    test_now = 1799996460 + 3600; /* its first bucket leaves */
    RUN(w, b->add(s, "rcpt", "gus", 1, -1, &w.call));
    CHECK_INT(w.call.answer.ok, 1);
    CHECK_INT(w.call.answer.used, 3);
    /* a transaction's record as an older version wrote it (a hash), with
     * its deadline; a reservation joins it, and a release settles both */
    char rkey[128], dkey[128];
    snprintf(rkey, sizeof rkey, "%sr:OLD1", prefix);
    snprintf(dkey, sizeof dkey, "%srd", prefix);
    r = redisCommand(rc, "HSET %s rcpt\tgus\t%lld\t0 1", rkey, (long long)test_now);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER);
    freeReplyObject(r);
    r = redisCommand(rc, "ZADD %s %lld OLD1", dkey, (long long)test_now + 60);
    freeReplyObject(r);
    RUN(w, b->reserve(s, "rcpt", "hal", "OLD1", 1, -1, &w.call));
    CHECK_INT(w.call.rc, 0);
    CHECK_INT(w.call.answer.used, 1);
    RUN(w, b->release(s, "OLD1", &w.call));
    CHECK_INT(w.call.released, 2);
    RUN(w, b->check(s, "rcpt", "gus", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    RUN(w, b->check(s, "rcpt", "hal", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 0);
    /* the next version's record: a string of lines, a key of its own; a
     * reservation is appended to it, and a commit settles both */
    snprintf(rkey, sizeof rkey, "%sr:OLD2", prefix);
    r = redisCommand(rc, "SET %s rcpt\tgus\t%lld\t0\t1\n EX 7200", rkey, (long long)test_now);
    CHECK(r != NULL && r->type == REDIS_REPLY_STATUS);
    freeReplyObject(r);
    r = redisCommand(rc, "ZADD %s %lld OLD2", dkey, (long long)test_now + 60);
    freeReplyObject(r);
    RUN(w, b->reserve(s, "rcpt", "hal", "OLD2", 2, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    RUN(w, b->commit(s, "OLD2", 1, &w.call));
    CHECK_INT(w.call.committed, 2); /* 1 of each */
    CHECK_INT(w.call.released, 1);
    RUN(w, b->check(s, "rcpt", "gus", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2); /* its 1 kept, as it was */
    RUN(w, b->check(s, "rcpt", "hal", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 1);
    r = redisCommand(rc, "EXISTS %s", rkey);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    freeReplyObject(r);
    /* and one of this version's, with two reservations appended: a field
     * of the hash of its deadline's minute, not a key of its own, and the
     * hash expires an hour and the timeout after that minute */
    RUN(w, b->reserve(s, "rcpt", "hal", "NEW1", 1, -1, &w.call));
    RUN(w, b->reserve(s, "rcpt", "hal", "NEW1", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 3);
    snprintf(rkey, sizeof rkey, "%sr:NEW1", prefix);
    r = redisCommand(rc, "EXISTS %s", rkey);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == 0);
    freeReplyObject(r);
    int64_t slot = (test_now + 60) / 60;
    snprintf(rkey, sizeof rkey, "%srs:%lld", prefix, (long long)slot);
    r = redisCommand(rc, "HGET %s NEW1", rkey);
    CHECK(r != NULL && r->type == REDIS_REPLY_STRING);
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        char want[200];
        int64_t bucket = test_now / 60 * 60;
        snprintf(want, sizeof want, "rcpt\thal\t%lld\t0\t1\nrcpt\thal\t%lld\t0\t1\n",
                 (long long)bucket, (long long)bucket);
        CHECK_STR(r->str, want);
    }
    freeReplyObject(r);
    r = redisCommand(rc, "EXPIRETIME %s", rkey);
    CHECK(r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer == (slot + 1) * 60 + 60 + 3600);
    freeReplyObject(r);
    RUN(w, b->commit(s, "NEW1", 1, &w.call));
    CHECK_INT(w.call.committed, 1);
    CHECK_INT(w.call.released, 1);
    RUN(w, b->check(s, "rcpt", "hal", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 2);
    r = redisCommand(rc, "HKEYS %s", rkey); /* the record went; the slot's mark stays, till it expires */
    CHECK(r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->len == 0);
    freeReplyObject(r);
    r = redisCommand(rc, "DEL %s", rkey);
    freeReplyObject(r);
    r = redisCommand(rc, "DEL %s", key);
    freeReplyObject(r);
    redisFree(rc);

    b->close(s);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

/* limit { backend = redis } beside limits on RocksDB: each operation goes
 * to its limit's store; commit and release settle both and add up. */
CTEST(a_limit_on_redis_beside_limits_on_rocksdb)
{
    setup(NULL);
    cfg.backend = OP_COUNTERS_BACKEND_ROCKSDB;
    limits[0].backend = OP_COUNTERS_BACKEND_REDIS + 1; /* rcpt on Redis, open on RocksDB */
    char err[256];
    op_counters_t *c = op_counters_open_private(&loop, &cfg, err, sizeof err);
    CHECK(c != NULL);
    CHECK(op_counters_may_wait(c));
    CHECK(op_counters_has_limit(c, "rcpt") && op_counters_has_limit(c, "open"));
    CHECK(!op_counters_has_limit(c, "nope"));
    wait_t w;
    memset(&w, 0, sizeof w);
    w.call.cb = on_done;
    w.call.data = &w;
    CHECK_INT(op_counters_reserve(c, "rcpt", "erin", "J1", 2, -1, &w.call), OP_COUNTERS_STARTED);
    CHECK(ctest_run_until(&loop, &w.done, 5));
    CHECK_INT(w.call.answer.used, 2);
    memset(&w, 0, sizeof w);
    CHECK_INT(op_counters_reserve(c, "open", "erin", "J1", 3, -1, &w.call), 0); /* RocksDB: at once */
    CHECK_INT(w.call.answer.used, 3);
    RUN(w, op_counters_commit(c, "J1", 1, &w.call));
    CHECK_INT(w.call.rc, 0);
    CHECK_INT(w.call.committed, 2); /* 1 on each */
    CHECK_INT(w.call.released, 3);
    RUN(w, op_counters_check(c, "rcpt", "erin", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 1);
    RUN(w, op_counters_check(c, "open", "erin", 1, -1, &w.call));
    CHECK_INT(w.call.answer.used, 1);
    RUN(w, op_counters_add(c, "nope", "erin", 1, -1, &w.call));
    CHECK_INT(w.call.rc, OP_COUNTERS_ENOLIMIT);
    admin_wait_t a = {0};
    a.a.op = OP_ADMIN_SHOW;
    strcpy(a.a.limit, "rcpt");
    strcpy(a.a.subject, "erin");
    CHECK_INT(admin(c, &a), 0);
    CHECK_INT(a.a.answer.used, 1);
    strcpy(a.a.limit, "open");
    CHECK_INT(admin(c, &a), 0);
    CHECK_INT(a.a.answer.used, 1);
    finish(c);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
