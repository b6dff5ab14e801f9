/* Internal to counters*.c: the store and its key layout.
 *
 *   'c' limit 0 subject 0 start(8, big-endian)  -> count(8) leaves(8)    window buckets
 *   'r' instance 0 limit 0 subject 0 start(8)   -> n(8) deadline(8)      reservations
 *   't' deadline(8) instance 0 limit 0 subject 0 start(8) -> ""         reservation deadlines
 *                       (written by older versions; the index is in memory now,
 *                       counters_deadlines.c, and the sweep drops these)
 *   'o' limit 0 subject                          -> max until set_at who reason (tab-separated)
 *   'v'                                          -> "FORMAT outpost VERSION"   the version stamp
 *                       (counters_stamp.c: a newer format is refused at open)
 *
 * `start` is a bucket's first second (not its index), so a reload that
 * changes a limit's resolution reads old buckets at the right time.
 * Integers in values are little-endian; times in keys are big-endian (with
 * a bias for negative values) so keys sort by time.  A subject's window is one prefix scan
 * from its first bucket.  `leaves` is the second the bucket leaves its
 * window, so the compaction filter drops old buckets without knowing the
 * limits (no cron job). */
#ifndef OP_COUNTERS_STORE_H
#define OP_COUNTERS_STORE_H

#include "counters/counter_window.h"
#include "counters/counters_rocksdb.h"

#include <rocksdb/c.h>

typedef struct op__win op__win_t;
typedef struct op__group op__group_t;
typedef struct op__dl op__dl_t;

typedef struct {
    char *name;
    int64_t max, max_override;
    op_window_t w;
} op__limit_t;

struct op_rocks {
    rocksdb_t *db;
    rocksdb_options_t *opts;
    rocksdb_writeoptions_t *wopts;
    rocksdb_readoptions_t *ropts;
    rocksdb_compactionfilter_t *filter;
    rocksdb_block_based_table_options_t *table;
    rocksdb_cache_t *cache;
    op__limit_t *limits;
    size_t nlimits;
    double reservation_timeout;
    op_counters_clock_fn clock;
    void *clock_data;
    int64_t last_now;       /* the clock's last reading, for the compaction filter */
    uv_timer_t *timer;      /* reservation deadlines; NULL without a loop */
    char *path;
    int remove_on_close;    /* a private store (op_rocks_open_private) */
    int read_only;          /* op_rocks_open_read_only: log_dir is its info log's, removed at close */
    char *log_dir;
    /* Deadlines before this were all handled: the next sweep seeks here
     * instead of stepping over the tombstones of every released record. */
    int64_t expired_until;
    int64_t last_sweep;
    /* Hashes of the (limit, subject) pairs with an override, sorted: most
     * subjects have none, and a miss here saves a store lookup on every
     * request.  Rebuilt from the store when an override is set or cleared. */
    uint64_t *override_hashes;
    size_t noverride_hashes;
    /* The last (limit, subject) op__subject_hash hashed, and its hash: a
     * reservation asks for it three times (its override, its window, the
     * bucket it writes). */
    char memo_limit[OP_COUNTERS_MAX_KEY + 1], memo_subject[OP_COUNTERS_MAX_KEY + 1];
    uint64_t memo_hash;
    /* The reservations' deadlines (counters_deadlines.c), NULL when none;
     * at most dl_max of them.  dl_spill_due: the earliest deadline of a
     * record not indexed (INT64_MAX when every record is). */
    op__dl_t *dl;
    size_t dl_max;
    int64_t dl_spill_due;
    /* The windows in memory (counters_mem.c): a hash table of chains. */
    op__win_t **slots;
    size_t nslots, nwins, max_wins, evict_at;
    /* Group commit (counters_group.c): with a loop, the writes of one loop
     * iteration collect in a group of batches (pending: the one adds go
     * into), written by the writer's thread before the answers that report
     * them leave (core/durable.h).  Groups are numbered: settled_seq is
     * the last that ended; a window read from the store is right only once
     * load_after has settled (a window dropped from memory with writes in
     * a group). */
    int group;
    op__group_t *collecting, *inflight;
    struct op_writer *writer;   /* the thread that writes the groups (counters_writer.h) */
    rocksdb_writebatch_t *pending;
    uint64_t next_seq, settled_seq, load_after;
    uv_loop_t *loop;
    uv_timer_t *watch;          /* write_timeout of the group under way */
    double write_timeout;
    rocksdb_writeoptions_t *wopts_sync, *wopts_nosync; /* wopts is one of them */
    /* Failing: a write failed or stalled; adds answer EIO until it ends.
     * need_reopen: RocksDB refuses writes after an error until opened
     * again.  db_leaked: closed with a write still on the writer's thread. */
    int failing, need_reopen, db_leaked, group_close_rc;
    /* The store as of the last settled group (taken when no group is being
     * written): records read through it plus the groups' records are
     * exact, even while the writer's thread writes the next group. */
    const rocksdb_snapshot_t *snap;
    char fail_reason[256];
};

typedef struct {
    char b[3 * OP_COUNTERS_MAX_KEY + 32];
    size_t n;
} op__key_t;

void op__key_init(op__key_t *k, char tag);
void op__key_str(op__key_t *k, const char *s); /* s and a 0 */
void op__key_u64(op__key_t *k, uint64_t v);
uint64_t op__get_be(const char *p);
int64_t op__get_le(const char *p);
void op__put_le(char *p, int64_t v);

const op__limit_t *op__limit(const op_rocks_t *c, const char *name);
/* A string argument is usable in a key: 1..OP_COUNTERS_MAX_KEY bytes, no 0. */
int op__key_ok(const char *s);

/* Reads the window of (limit, subject) into sums for `want` more, with the
 * subject's effective maximum; cur_count is the current bucket's count at
 * now_out, the clock reading it used. */
int op__window(op_rocks_t *c, const op__limit_t *l, const char *subject, int64_t want,
               int64_t dir_max, op_counters_answer_t *a, int64_t *cur_count, int64_t *now_out);
/* Sets the count of (limit, subject)'s bucket starting at second `start`
 * in the batch (deletes it at 0). */
void op__bucket_put(op_rocks_t *c, rocksdb_writebatch_t *wb, const op__limit_t *l,
                    const char *subject, int64_t start, int64_t count);
int op__write(op_rocks_t *c, rocksdb_writebatch_t *wb);
/* The batch for an add or a reservation: the iteration's group batch, or a
 * new one without a loop.  op__write of it writes (or leaves it to the
 * barrier); op__unused gives back one that got nothing. */
rocksdb_writebatch_t *op__batch(op_rocks_t *c);
void op__unused(op_rocks_t *c, rocksdb_writebatch_t *wb);
/* The group machinery (counters_group.c). */
int op__group_start(op_rocks_t *c, uv_loop_t *loop); /* -1: no writer thread */
void op__group_close(op_rocks_t *c);
void op__group_recover(op_rocks_t *c);
int op__barrier_run(void *data);
int op__failing(const op_rocks_t *c);
/* The number of the latest group not yet settled, 0 when none. */
uint64_t op__unsettled_seq(const op_rocks_t *c);
/* Reservation records written into a group and not yet in the store:
 * recorded as they are written, applied over what the store holds. */
void op__rec_merge(op_rocks_t *c, const char *key, size_t klen, int64_t n, int64_t deadline);
void op__rec_delete(op_rocks_t *c, const char *key, size_t klen);
/* found, n, deadline: the store's; returns whether the record exists after the groups. */
int op__rec_apply(op_rocks_t *c, const char *key, size_t klen, int found, int64_t *n,
                  int64_t *deadline);
/* Reads of records use the snapshot of the last settled group. */
void op__rec_read_options(op_rocks_t *c, rocksdb_readoptions_t *ro);
/* A scan of the store's keys in [lo, hi), positioned at lo.  hi must
 * outlive the scan (RocksDB keeps a pointer to the bound); with records,
 * the reads see the snapshot of the last settled group (op__rec_read_options). */
typedef struct {
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it;
} op__scan_t;
void op__scan_open(op_rocks_t *c, op__scan_t *s, const op__key_t *lo, const op__key_t *hi,
                   int records);
/* Ends the scan: 0, or OP_COUNTERS_EIO when the iterator failed (logged). */
int op__scan_close(op_rocks_t *c, op__scan_t *s);
/* Calls fn for each record key with prefix that a group wrote (repeats possible). */
void op__rec_keys(op_rocks_t *c, const char *prefix, size_t plen,
                  void (*fn)(void *data, const char *key, size_t klen), void *data);
/* Drops a batch that was not written, and with it what memory took from it. */
void op__discard(op_rocks_t *c, rocksdb_writebatch_t *wb);
/* Check and add into wb: nothing runs between the read and the write (the
 * loop thread does both), so no two requests pass the last slot. */
int op__add_locked(op_rocks_t *c, const op__limit_t *l, const char *subject, int64_t n,
                   int64_t dir_max, op_counters_answer_t *a, rocksdb_writebatch_t *wb,
                   int64_t *start);
/* Completes an admitted add's answer once it was written. */
int op__answer_after_add(op_rocks_t *c, const op__limit_t *l, const char *subject,
                         int64_t dir_max, op_counters_answer_t *a);
/* Gives n back to the bucket starting at `start`, if it is still there. */
int op__bucket_sub(op_rocks_t *c, rocksdb_writebatch_t *wb, const op__limit_t *l,
                   const char *subject, int64_t start, int64_t n);
/* Deletes in wb every reservation record of (limit, subject), and forgets
 * their deadlines (a reset). */
int op__resv_forget_subject(op_rocks_t *c, rocksdb_writebatch_t *wb, const char *limit,
                            const char *subject);
/* The merge of reservation records (counters_txn.c), for the store's options. */
rocksdb_mergeoperator_t *op__resv_merge_operator(void);
/* Rebuilds override_hashes from the store. */
void op__override_index(op_rocks_t *c);
uint64_t op__override_hash(const char *limit, const char *subject);
/* The same, remembered for the last (limit, subject) asked. */
uint64_t op__subject_hash(op_rocks_t *c, const char *limit, const char *subject);
/* The operator override of (limit, subject), if any: 1 found, 0 none. */
int op__override_get(op_rocks_t *c, const char *limit, const char *subject,
                     op_counters_override_t *o);

/* ---- the reservations' deadlines in memory (counters_deadlines.c) ---- */

/* Indexes record key's deadline: 1 done (or indexed already: the record
 * keeps its first deadline), 0 the index is full. */
int op__dl_add(op_rocks_t *c, const char *key, size_t klen, int64_t deadline);
/* Forgets a record settled (committed or released). */
void op__dl_forget(op_rocks_t *c, const char *key, size_t klen);
/* Takes the record due first into k when it is due at now: 1, else 0. */
int op__dl_pop_due(op_rocks_t *c, int64_t now, op__key_t *k);
size_t op__dl_count(const op_rocks_t *c);
void op__dl_clear(op_rocks_t *c);
/* Reads every record of the store: those due at now go to due (none at
 * open: now = INT64_MIN), the dl_max earliest of the others are indexed,
 * and dl_spill_due is set for the rest. */
typedef int (*op__dl_due_fn)(op_rocks_t *c, const op__key_t *rk, int64_t now, int64_t *total);
int op__dl_rebuild(op_rocks_t *c, int64_t now, op__dl_due_fn due, int64_t *total);

/* ---- the windows in memory (counters_mem.c) ---- */

typedef struct {
    int64_t start;  /* the bucket's first second */
    int64_t count;
    int64_t leaves; /* when it leaves its window, as stored */
} op__wbucket_t;

/* The window entry of (limit, subject), read from the store when it is not
 * in memory yet. */
int op__mem_get(op_rocks_t *c, const char *limit, const char *subject, op__win_t **out);
/* Its buckets, by start ascending. */
const op__wbucket_t *op__mem_buckets(const op__win_t *e, size_t *n);
/* The count of the bucket starting at `start`, -1 when there is none. */
int64_t op__mem_count(const op__win_t *e, int64_t start);
/* The entry has writes in group seq: it stays in memory until that settles. */
void op__mem_dirty(op__win_t *e, uint64_t seq);
/* Sets a bucket (count <= 0 removes it), as op__bucket_put does in the store. */
void op__mem_set(op__win_t *e, int64_t start, int64_t count, int64_t leaves);
/* Records the clock reading; buckets that left by then may be dropped. */
void op__mem_touch(op__win_t *e, int64_t now);
void op__mem_prune(op__win_t *e, int64_t now);
/* Forgets one entry, or all; the store still has them. */
void op__mem_drop(op_rocks_t *c, const char *limit, const char *subject);
void op__mem_clear(op_rocks_t *c);

/* The key layout's format (the version stamp, counters_stamp.c). */
#define OP__STORE_FORMAT 1
/* Checks the stamp of the store just opened and writes ours: 0, or -1
 * with err when a newer outpost wrote the store in a format this one does
 * not know. */
int op__store_stamp(op_rocks_t *c, const char *version, char *err, size_t errlen);

#endif
