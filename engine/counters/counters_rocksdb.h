/* The RocksDB counter backend (backend.h): the counts of every limit in
 * one RocksDB store on this host.  counters_rocksdb.c plugs these
 * functions into the backend interface; nothing outside engine/counters/
 * calls them (C tests of the store do).
 *
 * Every operation runs on the loop thread and answers at once: reads come
 * from the windows kept in memory (counters_mem.c), and a write goes into
 * the loop iteration's WriteBatch, so a check and its add happen in one
 * step with nothing in between (atomic check-and-add without locks).  The
 * batch is written once per iteration and the answers wait for it at the
 * durability barrier (counters.c): with sync off, an acknowledged
 * increment survives kill -9, not a power loss (sync on adds an fsync per
 * batch).  Without a loop (C tests, bench tools) every write is made
 * before the call returns.
 *
 * Transactions: reserve() counts against the limit at once and remembers
 * the amount under Postfix's `instance`; commit() keeps it, release() gives
 * it back; a reservation neither committed nor released within
 * reservation_timeout is released by a timer (counters_txn.c).
 *
 * Return codes as in counters.h. */
#ifndef OP_COUNTERS_ROCKSDB_H
#define OP_COUNTERS_ROCKSDB_H

#include "counters/counters.h"

typedef struct op_rocks op_rocks_t;

/* Opens the store of cfg (counters.path or <state_dir>/counters) and
 * starts the reservation timer on loop (NULL: no timer, as in C tests). */
op_rocks_t *op_rocks_open(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err, size_t errlen);
/* The same on a private store in a new temporary directory, removed by
 * op_rocks_close. */
op_rocks_t *op_rocks_open_private(uv_loop_t *loop, const op_counters_conf_t *cfg, char *err,
                                  size_t errlen);
/* The daemon's store, read-only (rocksdb_open_for_read_only: no lock, so
 * a running daemon may hold it; nothing written, RocksDB's info log kept
 * in a temporary directory); no loop: no group commit, no sweep.  Only
 * op_rocks_check and the operator's reads may be called on it. */
op_rocks_t *op_rocks_open_read_only(const op_counters_conf_t *cfg, char *err, size_t errlen);
void op_rocks_configure(op_rocks_t *c, const op_counters_conf_t *cfg);
void op_rocks_close(op_rocks_t *c);
void op_rocks_set_clock(op_rocks_t *c, op_counters_clock_fn fn, void *data);
int64_t op_rocks_now(op_rocks_t *c);
int op_rocks_has_limit(const op_rocks_t *c, const char *limit);

int op_rocks_check(op_rocks_t *c, const char *limit, const char *subject, int64_t n,
                   int64_t dir_max, op_counters_answer_t *a);
int op_rocks_add(op_rocks_t *c, const char *limit, const char *subject, int64_t n,
                 int64_t dir_max, op_counters_answer_t *a);
int op_rocks_reserve(op_rocks_t *c, const char *limit, const char *subject,
                     const char *instance, int64_t n, int64_t dir_max, op_counters_answer_t *a);
int op_rocks_commit(op_rocks_t *c, const char *instance, int64_t keep, int64_t *committed,
                    int64_t *released);
int op_rocks_release(op_rocks_t *c, const char *instance, int64_t *released);
int64_t op_rocks_expire(op_rocks_t *c);
int op_rocks_reserved(op_rocks_t *c, const char *limit, const char *subject, int64_t *n);

int op_rocks_reset(op_rocks_t *c, const char *limit, const char *subject);
int op_rocks_override_set(op_rocks_t *c, const char *limit, const char *subject, int64_t max,
                          int64_t until, const char *who, const char *reason, char *err,
                          size_t errlen);
int op_rocks_override_clear(op_rocks_t *c, const char *limit, const char *subject);
int op_rocks_override_list(op_rocks_t *c, const char *limit,
                           int (*fn)(const op_counters_override_t *o, void *data), void *data);
int op_rocks_top(op_rocks_t *c, const char *limit, op_counters_top_t *out, size_t n);
uint64_t op_rocks_disk_bytes(op_rocks_t *c);
/* NULL when the store works; else why it is failing. */
const char *op_rocks_health(const op_rocks_t *c);

#endif
