/* What a counter backend implements: the seam between the counters
 * handle (counters.h, backend.c), which the engine calls, and a store of
 * counts (RocksDB: counters_rocksdb.c; Redis is issue 16).  A backend
 * knows nothing of Lua, requests or connections.
 *
 * `store` is what open returned.  Every function runs on the loop thread.
 * Argument strings are the caller's: valid only until the function
 * returns, so a backend that answers later copies what it needs.
 *
 * Atomicity: add and reserve check and add in one step that no other
 * operation on the same (limit, subject) can come between, so concurrent
 * requests never admit more than the maximum.  RocksDB gets that from the
 * loop thread (the read and the write happen in one call); a network
 * backend must get it from its server (one script or transaction that
 * reads the window and adds), never from a read and a write sent apart.
 * Likewise commit and release settle an instance's reservations at most
 * once.
 *
 * Durability: an answer must not report a count a crash could lose.  The
 * RocksDB backend answers at once and holds the answer at the durability
 * barrier until its batch is in the write-ahead log (counters.c); a
 * network backend answers (cb) only when the server acknowledged the
 * write.
 *
 * Asynchronous backends (may_wait = 1).  check, add, reserve, commit and
 * release get the caller's call (counters.h): the backend answers 0 with
 * the results in the call when it can (a local cache, a misuse), or keeps
 * the call, starts the I/O and answers OP_COUNTERS_STARTED; when the I/O
 * ends it sets call->rc and the results and calls call->cb(call), once,
 * from the loop -- never inside the start call.  Misuse (ENOLIMIT,
 * EINVAL) is answered at once: the limits come from the config.  close
 * completes every call in flight with OP_COUNTERS_ECANCELLED before it
 * returns.  The request side needs nothing more: lua_api_limit.c yields
 * the request on STARTED and resumes it from cb (the yield contract,
 * docs/architecture.md); a request that gave up meanwhile leaves its
 * record to cb, which frees it.
 *
 * The operator's functions (show .. disk_bytes) answer at once; a
 * network backend also implements admin, their call form, which
 * control_cmd.c uses, so outpostctl is answered from cb and the loop
 * never waits (docs/limits.md, "Counter backends"). */
#ifndef OP_COUNTERS_BACKEND_H
#define OP_COUNTERS_BACKEND_H

#include "counters/counters.h"

enum { OP_COUNTERS_PRIVATE = 1, OP_COUNTERS_READ_ONLY = 2 };

typedef struct op_counters_backend {
    const char *name;  /* as the config names it */
    int may_wait;      /* may answer OP_COUNTERS_STARTED */

    /* private_state: 0 the daemon's state; OP_COUNTERS_PRIVATE: state of
     * its own that no daemon shares, dropped at close (`outpostd test`);
     * OP_COUNTERS_READ_ONLY: the daemon's state, only read, beside a
     * daemon that may hold it (`outpostd ask --dry-run`: check is all it
     * calls; no sweep, no write).  NULL with a message in err. */
    void *(*open)(uv_loop_t *loop, const op_counters_conf_t *cfg, int private_state, char *err,
                  size_t errlen);
    void (*configure)(void *store, const op_counters_conf_t *cfg);
    void (*close)(void *store);
    int64_t (*now)(void *store);
    int (*has_limit)(void *store, const char *limit);

    /* What requests wait for: 0, OP_COUNTERS_STARTED or < 0 (counters.h). */
    int (*check)(void *store, const char *limit, const char *subject, int64_t n,
                 int64_t dir_max, op_counters_call_t *call);
    int (*add)(void *store, const char *limit, const char *subject, int64_t n, int64_t dir_max,
               op_counters_call_t *call);
    int (*reserve)(void *store, const char *limit, const char *subject, const char *instance,
                   int64_t n, int64_t dir_max, op_counters_call_t *call);
    int (*commit)(void *store, const char *instance, int64_t keep, op_counters_call_t *call);
    int (*release)(void *store, const char *instance, op_counters_call_t *call);

    /* The reservation timeout's sweep (the backend also runs it by itself). */
    int64_t (*expire)(void *store);

    /* The operator's. */
    int (*show)(void *store, const char *limit, const char *subject, op_counters_answer_t *a,
                int64_t *reserved);
    int (*reset)(void *store, const char *limit, const char *subject);
    int (*override_set)(void *store, const char *limit, const char *subject, int64_t max,
                        int64_t until, const char *who, const char *reason, char *err,
                        size_t errlen);
    int (*override_clear)(void *store, const char *limit, const char *subject);
    int (*override_list)(void *store, const char *limit,
                         int (*fn)(const op_counters_override_t *o, void *data), void *data);
    int (*top)(void *store, const char *limit, op_counters_top_t *out, size_t n);
    uint64_t (*disk_bytes)(void *store);
    /* NULL when the store works, else why not (outpostctl status). */
    const char *(*health)(void *store);

    /* The operator's calls in the call form (counters.h): NULL for a
     * backend that answers them at once through the functions above
     * (backend.c runs them); a network backend answers
     * OP_COUNTERS_STARTED and fires a->cb from the loop. */
    int (*admin)(void *store, op_counters_admin_t *a);
} op_counters_backend_t;

/* The backends there are. */
extern const op_counters_backend_t op_counters_rocksdb;
extern const op_counters_backend_t op_counters_redis; /* counters_redis.c */

/* A handle on a backend's store that is already open (tests: a backend
 * of their own; backend.c's open uses it too).  Closing the handle closes
 * the store. */
op_counters_t *op_counters_wrap(const op_counters_backend_t *be, void *store);

#endif
