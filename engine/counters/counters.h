/* The counters service as the rest of the engine sees it: persistent
 * sliding-window rate limits (docs/limits.md) behind one handle, whatever
 * backend keeps the counts.  A backend implements backend.h (RocksDB
 * today: counters_rocksdb.h); callers (lua_api_limit.c, control_cmd.c,
 * services.c) include only this header.  Knows nothing of Lua.
 *
 * A limit (limit NAME { } in the config) allows at most `max` per subject
 * in any window.  check() changes nothing; add() checks and adds in one
 * atomic step (no two requests pass the last slot); reserve() is an add
 * remembered under Postfix's `instance`, which commit() keeps and
 * release() gives back (a backend releases reservations neither committed
 * nor released within reservation_timeout by itself).
 *
 * The operations a request waits for (check, add, reserve, commit,
 * release) take a call and answer in one of three ways:
 *
 *   0                    done: the results are in the call; cb never fires
 *   OP_COUNTERS_STARTED  under way: call->cb fires once, later, from the
 *                        loop, with call->rc and the results set; the call
 *                        must stay where it is until then
 *   < 0                  failed at once; cb never fires
 *
 * Misuse (ENOLIMIT, EINVAL) is always answered at once, so a completion
 * reports only how the I/O went (0, EIO, ECANCELLED).  A backend answers
 * STARTED only if op_counters_may_wait() says so; when it does not (the
 * RocksDB backend always answers at once), the call may live on the
 * caller's stack and the caller need not be able to wait.  That keeps the
 * hot path as it was: one indirect call, no allocation.
 *
 * The operator's operations (show, reset, overrides, top, disk usage)
 * answer at once (backend.h says how a network backend will change that).
 *
 * Return codes: 0, or OP_COUNTERS_ENOLIMIT (no such limit in the config),
 * OP_COUNTERS_EINVAL (bad argument), OP_COUNTERS_EIO (the store failed;
 * the error is logged), OP_COUNTERS_ENOTFOUND (no such override),
 * OP_COUNTERS_ECANCELLED (the service closed with the call in flight). */
#ifndef OP_COUNTERS_H
#define OP_COUNTERS_H

#include "counters/counters_config.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define OP_COUNTERS_STARTED 1
#define OP_COUNTERS_ENOLIMIT (-1)
#define OP_COUNTERS_EINVAL (-2)
#define OP_COUNTERS_EIO (-3)
#define OP_COUNTERS_ENOTFOUND (-4)
#define OP_COUNTERS_ECANCELLED (-5)

#define OP_COUNTERS_MAX_KEY 512 /* longest subject, instance or limit name */

typedef struct op_counters op_counters_t;

/* Seconds since the epoch; tests replace it. */
typedef int64_t (*op_counters_clock_fn)(void *data);

/* Where a subject's maximum came from. */
typedef enum {
    OP_MAX_DEFAULT,   /* the limit's max */
    OP_MAX_DIRECTORY, /* a value the policy passed (a directory tier), capped at max_override */
    OP_MAX_OPERATOR,  /* outpostctl limit set */
} op_max_source_t;

typedef struct {
    int ok;              /* the amount asked for fits (and was added, for add/reserve) */
    int64_t max;
    int64_t used;        /* after the operation */
    int64_t remaining;
    int64_t next_free;   /* epoch second when the amount would fit; -1: never */
    int64_t window;      /* seconds */
    int64_t resolution;
    op_max_source_t source;
} op_counters_answer_t;

typedef struct op_counters_call op_counters_call_t;

/* An operation that answered OP_COUNTERS_STARTED ended. */
typedef void (*op_counters_cb)(op_counters_call_t *call);

/* One operation a request waits for.  The caller sets cb and data (they
 * matter only after OP_COUNTERS_STARTED); the backend sets the rest.  A
 * caller that must wait embeds the call in its pending record. */
struct op_counters_call {
    op_counters_cb cb;
    void *data;
    int rc;                      /* as cb fires: 0 or a negative code */
    op_counters_answer_t answer; /* check, add, reserve */
    int64_t committed;           /* commit */
    int64_t released;            /* commit, release */
};

typedef struct {
    int64_t max;
    int64_t until;       /* epoch second, 0 = no end */
    int64_t set_at;
    char who[64];
    char reason[256];
    char limit[OP_COUNTERS_MAX_KEY + 1];
    char subject[OP_COUNTERS_MAX_KEY + 1];
    int expired;
} op_counters_override_t;

typedef struct {
    char subject[OP_COUNTERS_MAX_KEY + 1];
    int64_t used;
    int64_t max;
} op_counters_top_t;

/* Opens the backend the config names (RocksDB: counters.path or
 * <state_dir>/counters) on loop (NULL: no timers and no group commit, as
 * in C tests and bench tools). */
op_counters_t *op_counters_open(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err, size_t errlen);
/* The same on private state (a new temporary store, removed by
 * op_counters_close): `outpostd test` must not touch (or wait for the
 * lock of) the state of a daemon running with the same configuration. */
op_counters_t *op_counters_open_private(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                        size_t errlen);
/* The daemon's store, opened to be read beside a daemon that may hold it
 * (`outpostd ask --dry-run`): RocksDB read-only (no lock taken, nothing
 * written), Redis without the reservation sweep.  Only check may be
 * called on it. */
op_counters_t *op_counters_open_read_only(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                          size_t errlen);
/* Takes the limits and settings of a reloaded config; the path needs a restart. */
void op_counters_configure(op_counters_t *c, const op_counters_conf_t *cfg);
/* Calls in flight complete with OP_COUNTERS_ECANCELLED before it returns. */
void op_counters_close(op_counters_t *c);

/* Whether an operation may answer OP_COUNTERS_STARTED. */
int op_counters_may_wait(const op_counters_t *c);
/* The backend's name as the config names it ("rocksdb", "redis"). */
const char *op_counters_backend_name(const op_counters_t *c);
/* Whether a limit of this name is configured. */
int op_counters_has_limit(const op_counters_t *c, const char *limit);
/* The backend's clock, seconds since the epoch (answers' next_free use it). */
int64_t op_counters_now(op_counters_t *c);

/* ---- what requests wait for (results in call) ---- */

/* dir_max: the subject's maximum from the directory, < 0 when none. */
int op_counters_check(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                      int64_t dir_max, op_counters_call_t *call);
int op_counters_add(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                    int64_t dir_max, op_counters_call_t *call);
int op_counters_reserve(op_counters_t *c, const char *limit, const char *subject,
                        const char *instance, int64_t n, int64_t dir_max, op_counters_call_t *call);
/* Keeps at most `keep` per (limit, subject) of the instance's reservations
 * (keep < 0: all) and releases the rest: call->committed, call->released. */
int op_counters_commit(op_counters_t *c, const char *instance, int64_t keep,
                       op_counters_call_t *call);
/* Gives back every reservation of the instance: call->released. */
int op_counters_release(op_counters_t *c, const char *instance, op_counters_call_t *call);

/* ---- the operator's (outpostctl), answered at once ---- */

/* Releases reservations past their deadline now; returns how many recipients. */
int64_t op_counters_expire(op_counters_t *c);
/* What check(n = 1) answers for (limit, subject) without a directory
 * maximum, and how much of `used` is reserved and not yet committed (all
 * instances). */
int op_counters_show(op_counters_t *c, const char *limit, const char *subject,
                     op_counters_answer_t *a, int64_t *reserved);
int op_counters_reset(op_counters_t *c, const char *limit, const char *subject);
/* Operator overrides (outpostctl limit set|clear|show), logged with who
 * and why (the audit trail) and stored with them. */
int op_counters_override_set(op_counters_t *c, const char *limit, const char *subject,
                             int64_t max, int64_t until, const char *who, const char *reason,
                             char *err, size_t errlen);
int op_counters_override_clear(op_counters_t *c, const char *limit, const char *subject);
/* Calls fn for each override of limit (NULL: every limit); stops when fn returns non-zero. */
int op_counters_override_list(op_counters_t *c, const char *limit,
                              int (*fn)(const op_counters_override_t *o, void *data), void *data);
/* The n subjects of limit nearest their maximum (highest used/max first);
 * returns how many were filled in, or a negative code. */
int op_counters_top(op_counters_t *c, const char *limit, op_counters_top_t *out, size_t n);
/* Bytes the backend keeps on this host's disk (0 when it keeps none). */
uint64_t op_counters_disk_bytes(op_counters_t *c);

/* NULL when the store works; else why it is failing (a write failed or
 * stalled): counting answers unavailable until it recovers by itself. */
const char *op_counters_health(op_counters_t *c);

const char *op_counters_source_name(op_max_source_t s);

/* ---- the operator's, in the call form (outpostctl through control_cmd.c) ----
 *
 * The same operations as above as one call that answers at once (RocksDB)
 * or says OP_COUNTERS_STARTED and fires cb once, later, from the loop (a
 * network backend: the loop never waits for the server).  The caller
 * fills op and the arguments (copies: strings are not kept by pointer)
 * and keeps the call where it is until cb fired; the results are in it. */
typedef enum {
    OP_ADMIN_SHOW,
    OP_ADMIN_RESET,
    OP_ADMIN_OVERRIDE_SET,
    OP_ADMIN_OVERRIDE_CLEAR,
    OP_ADMIN_OVERRIDE_LIST,
    OP_ADMIN_TOP,
} op_counters_admin_op_t;

typedef struct op_counters_admin op_counters_admin_t;
struct op_counters_admin {
    op_counters_admin_op_t op;
    char limit[OP_COUNTERS_MAX_KEY + 1];   /* OVERRIDE_LIST: "" for every limit */
    char subject[OP_COUNTERS_MAX_KEY + 1];
    int64_t max, until;                    /* OVERRIDE_SET */
    char who[64], reason[256];             /* OVERRIDE_SET */
    size_t n;                              /* TOP: how many (1..1000) */
    void (*cb)(op_counters_admin_t *a);
    void *data;
    /* results */
    int rc;                                /* 0 or a negative code */
    char err[512];                         /* OVERRIDE_SET: why not */
    op_counters_answer_t answer;           /* SHOW */
    int64_t reserved;                      /* SHOW */
    op_counters_top_t *top;                /* TOP: n entries, malloc'ed; ntop filled */
    size_t ntop;
    op_counters_override_t *overrides;     /* OVERRIDE_LIST: malloc'ed */
    size_t noverrides;
};

/* 0 (done), OP_COUNTERS_STARTED (cb fires later) or < 0 (failed at once). */
int op_counters_admin(op_counters_t *c, op_counters_admin_t *a);
/* Frees the results a call holds (top, overrides). */
void op_counters_admin_free(op_counters_admin_t *a);

#endif
