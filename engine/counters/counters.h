/* The counters service: persistent sliding-window rate limits on RocksDB
 * (docs/limits.md).  Knows nothing of Lua; lua_api_limit.c binds it.
 *
 * A limit (limit NAME { } in the config) allows at most `max` per subject
 * in any window.  Every operation runs on the loop thread and answers at
 * once: RocksDB reads hit the memtable or the block cache, and a write
 * appends to the write-ahead log, so a check and its add happen in one
 * step with nothing in between (atomic check-and-add without locks) and
 * land in one WriteBatch.  With sync off, the WAL write reaches the OS
 * before the answer: an acknowledged increment survives kill -9, not a
 * power loss (sync on adds an fsync per write).
 *
 * Transactions: reserve() counts against the limit at once and remembers
 * the amount under Postfix's `instance`; commit() keeps it, release() gives
 * it back; a reservation neither committed nor released within
 * reservation_timeout is released by a timer.
 *
 * Return codes: 0, or OP_COUNTERS_ENOLIMIT (no such limit in the config),
 * OP_COUNTERS_EINVAL (bad argument), OP_COUNTERS_EIO (the store failed;
 * the error is logged). */
#ifndef OP_COUNTERS_H
#define OP_COUNTERS_H

#include "counters/counters_config.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define OP_COUNTERS_ENOLIMIT (-1)
#define OP_COUNTERS_EINVAL (-2)
#define OP_COUNTERS_EIO (-3)
#define OP_COUNTERS_ENOTFOUND (-4)

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

/* Opens the store of cfg (counters.path or <state_dir>/counters) and
 * starts the reservation timer on loop (NULL: no timer, as in C tests). */
op_counters_t *op_counters_open(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err, size_t errlen);
/* The same on a private store in a new temporary directory, removed by
 * op_counters_close: `outpostd test` must not touch (or wait for the lock
 * of) the store of a daemon running with the same configuration. */
op_counters_t *op_counters_open_private(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                        size_t errlen);
/* Takes the limits and settings of a reloaded config; the path needs a restart. */
void op_counters_configure(op_counters_t *c, const op_counters_conf_t *cfg);
void op_counters_close(op_counters_t *c);
void op_counters_set_clock(op_counters_t *c, op_counters_clock_fn fn, void *data);
int64_t op_counters_now(op_counters_t *c);

/* Whether a limit of this name is configured. */
int op_counters_has_limit(const op_counters_t *c, const char *limit);

/* dir_max: the subject's maximum from the directory, < 0 when none. */
int op_counters_check(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                      int64_t dir_max, op_counters_answer_t *a);
int op_counters_add(op_counters_t *c, const char *limit, const char *subject, int64_t n,
                    int64_t dir_max, op_counters_answer_t *a);
int op_counters_reserve(op_counters_t *c, const char *limit, const char *subject,
                        const char *instance, int64_t n, int64_t dir_max, op_counters_answer_t *a);
/* Keeps at most `keep` per (limit, subject) of the instance's reservations
 * (keep < 0: all) and releases the rest. */
int op_counters_commit(op_counters_t *c, const char *instance, int64_t keep, int64_t *committed,
                       int64_t *released);
int op_counters_release(op_counters_t *c, const char *instance, int64_t *released);
/* Releases reservations past their deadline; returns how many recipients. */
int64_t op_counters_expire(op_counters_t *c);
/* Reserved and not yet committed for (limit, subject), all instances. */
int op_counters_reserved(op_counters_t *c, const char *limit, const char *subject, int64_t *n);

int op_counters_reset(op_counters_t *c, const char *limit, const char *subject);

/* Operator overrides (outpostctl limit set|clear|show). */
int op_counters_override_set(op_counters_t *c, const char *limit, const char *subject,
                             int64_t max, int64_t until, const char *who, const char *reason,
                             char *err, size_t errlen);
int op_counters_override_clear(op_counters_t *c, const char *limit, const char *subject);
/* Calls fn for each override of limit (NULL: every limit); stops when fn returns non-zero. */
int op_counters_override_list(op_counters_t *c, const char *limit,
                              int (*fn)(const op_counters_override_t *o, void *data), void *data);

typedef struct {
    char subject[OP_COUNTERS_MAX_KEY + 1];
    int64_t used;
    int64_t max;
} op_counters_top_t;

/* The n subjects of limit nearest their maximum (highest used/max first);
 * returns how many were filled in, or a negative code. */
int op_counters_top(op_counters_t *c, const char *limit, op_counters_top_t *out, size_t n);

/* Bytes in the store's files (SST, WAL, manifest; sizes, not preallocated blocks). */
uint64_t op_counters_disk_bytes(op_counters_t *c);

const char *op_counters_source_name(op_max_source_t s);

#endif
