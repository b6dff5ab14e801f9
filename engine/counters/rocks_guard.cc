/* Where C++ exceptions from RocksDB stop (issue 14).
 *
 * RocksDB's C API is C++ underneath and catches nothing: a std::bad_alloc
 * in a write, or a std::length_error from a merge result, unwinds through
 * the C frames of the daemon, finds no handler and ends the process in
 * std::terminate.  Every RocksDB call the counters make at run time comes
 * here instead: the Makefile links the engine with `-Wl,--wrap=rocksdb_X`
 * for each function below, so a call to rocksdb_X in C resolves to
 * __wrap_rocksdb_X, which calls the library's (__real_rocksdb_X) inside a
 * try block.  A new call site needs no change; a newly used function needs
 * its wrapper here and its name in ROCKS_GUARDED (Makefile).
 *
 * RocksDB is not exception-safe: an exception skips its own clean-up (a
 * thread-local SuperVersion stays marked in use, and the next read asserts;
 * tried).  So the first exception poisons every handle in the process:
 * from then on no call reaches the library.  Calls that report errors
 * report one (why, and that a restart is needed); iterators end at once;
 * handles are leaked rather than closed (closing would run the clean-up
 * that asserts).  The RocksDB backend sees the fault through
 * op_rocks_guard_fault(), counts nothing until the process restarts
 * (counting answers are 4xx: mail waits in the MTA's queue) and says so in
 * `outpostctl status`.  Nothing else in the daemon depends on the store.
 *
 * Start-up calls (options, the first open) are not wrapped: an exception
 * there ends a start that answered nothing yet.  Exceptions on RocksDB's
 * own background threads (flush, compaction) never cross the C API; the
 * library ends the process itself, as it would in any program. */
#include <rocksdb/c.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>

extern "C" {
#include "counters/rocks_guard.h"
#include "core/log.h"


rocksdb_t *__real_rocksdb_open(const rocksdb_options_t *, const char *, char **);
void __real_rocksdb_close(rocksdb_t *);
void __real_rocksdb_write(rocksdb_t *, const rocksdb_writeoptions_t *, rocksdb_writebatch_t *,
                          char **);
char *__real_rocksdb_get(rocksdb_t *, const rocksdb_readoptions_t *, const char *, size_t,
                         size_t *, char **);
rocksdb_iterator_t *__real_rocksdb_create_iterator(rocksdb_t *, const rocksdb_readoptions_t *);
void __real_rocksdb_iter_seek(rocksdb_iterator_t *, const char *, size_t);
void __real_rocksdb_iter_next(rocksdb_iterator_t *);
unsigned char __real_rocksdb_iter_valid(const rocksdb_iterator_t *);
const char *__real_rocksdb_iter_key(const rocksdb_iterator_t *, size_t *);
const char *__real_rocksdb_iter_value(const rocksdb_iterator_t *, size_t *);
void __real_rocksdb_iter_get_error(const rocksdb_iterator_t *, char **);
void __real_rocksdb_iter_destroy(rocksdb_iterator_t *);
const rocksdb_snapshot_t *__real_rocksdb_create_snapshot(rocksdb_t *);
void __real_rocksdb_release_snapshot(rocksdb_t *, const rocksdb_snapshot_t *);
rocksdb_writebatch_t *__real_rocksdb_writebatch_create(void);
void __real_rocksdb_writebatch_put(rocksdb_writebatch_t *, const char *, size_t, const char *,
                                   size_t);
void __real_rocksdb_writebatch_merge(rocksdb_writebatch_t *, const char *, size_t, const char *,
                                     size_t);
void __real_rocksdb_writebatch_delete(rocksdb_writebatch_t *, const char *, size_t);
void __real_rocksdb_writebatch_delete_range(rocksdb_writebatch_t *, const char *, size_t,
                                            const char *, size_t);
int __real_rocksdb_writebatch_count(rocksdb_writebatch_t *);
rocksdb_readoptions_t *__real_rocksdb_readoptions_create(void);
void __real_rocksdb_readoptions_set_iterate_upper_bound(rocksdb_readoptions_t *, const char *,
                                                        size_t);
void __real_rocksdb_readoptions_set_snapshot(rocksdb_readoptions_t *,
                                             const rocksdb_snapshot_t *);
}

namespace {

/* The first exception's description; written once (any thread: the pool's
 * writer or the loop), read by every later call. */
char fault_text[200];
std::atomic<bool> poisoned{false};
std::atomic<bool> claimed{false};

void poison(const char *where, const char *what)
{
    bool expected = false;
    if (claimed.compare_exchange_strong(expected, true)) {
        std::snprintf(fault_text, sizeof fault_text,
                      "RocksDB threw %s in %s; the store is not used again until outpostd restarts",
                      what, where);
        poisoned.store(true, std::memory_order_release);
        op_log(OP_LOG_CRIT, "counters: %s; counting answers are 4xx until then", fault_text);
    }
}

/* The current exception, caught in the wrapper below, as text. */
void poison_current(const char *where)
{
    try {
        throw;
    } catch (const std::exception &e) {
        char what[120];
        std::snprintf(what, sizeof what, "an exception (%s)", e.what());
        poison(where, what);
    } catch (...) {
        poison(where, "an unknown exception");
    }
}

bool is_poisoned()
{
    return poisoned.load(std::memory_order_acquire);
}

/* An error the C API's way: a malloc'ed string the caller frees. */
void set_error(char **errptr)
{
    if (errptr != nullptr && *errptr == nullptr)
        *errptr = strdup(fault_text);
}

} // namespace

/* Runs body; an exception poisons the process and runs on_fault. */
#define GUARDED(body, on_fault)                                                                    \
    do {                                                                                           \
        try {                                                                                      \
            body;                                                                                  \
        } catch (...) {                                                                            \
            poison_current(__func__ + sizeof "__wrap_" - 1);                                       \
            on_fault;                                                                              \
        }                                                                                          \
    } while (0)

extern "C" {

const char *op_rocks_guard_fault(void)
{
    return is_poisoned() ? fault_text : nullptr;
}

/* ---- the database: refused once poisoned ---- */

rocksdb_t *__wrap_rocksdb_open(const rocksdb_options_t *o, const char *name, char **errptr)
{
    if (is_poisoned())
        return set_error(errptr), nullptr;
    GUARDED(return __real_rocksdb_open(o, name, errptr), set_error(errptr));
    return nullptr;
}

void __wrap_rocksdb_close(rocksdb_t *db)
{
    if (is_poisoned() || db == nullptr)
        return; /* leaked: closing runs the clean-up an exception skipped */
    GUARDED(__real_rocksdb_close(db), (void)0);
}

void __wrap_rocksdb_write(rocksdb_t *db, const rocksdb_writeoptions_t *o, rocksdb_writebatch_t *b,
                          char **errptr)
{
    if (is_poisoned() || b == nullptr) /* a null batch: its creation threw */
        return set_error(errptr);
    GUARDED(__real_rocksdb_write(db, o, b, errptr), set_error(errptr));
}

char *__wrap_rocksdb_get(rocksdb_t *db, const rocksdb_readoptions_t *o, const char *k, size_t kl,
                         size_t *vl, char **errptr)
{
    if (is_poisoned() || o == nullptr)
        return set_error(errptr), nullptr;
    GUARDED(return __real_rocksdb_get(db, o, k, kl, vl, errptr), set_error(errptr));
    return nullptr;
}

const rocksdb_snapshot_t *__wrap_rocksdb_create_snapshot(rocksdb_t *db)
{
    if (is_poisoned())
        return nullptr; /* reads without a snapshot: none reach the store anyway */
    GUARDED(return __real_rocksdb_create_snapshot(db), (void)0);
    return nullptr;
}

void __wrap_rocksdb_release_snapshot(rocksdb_t *db, const rocksdb_snapshot_t *s)
{
    if (is_poisoned() || s == nullptr)
        return;
    GUARDED(__real_rocksdb_release_snapshot(db, s), (void)0);
}

/* ---- iterators: a null or poisoned one is valid never ---- */

rocksdb_iterator_t *__wrap_rocksdb_create_iterator(rocksdb_t *db, const rocksdb_readoptions_t *o)
{
    if (is_poisoned() || o == nullptr)
        return nullptr;
    GUARDED(return __real_rocksdb_create_iterator(db, o), (void)0);
    return nullptr;
}

void __wrap_rocksdb_iter_seek(rocksdb_iterator_t *it, const char *k, size_t kl)
{
    if (is_poisoned() || it == nullptr)
        return;
    GUARDED(__real_rocksdb_iter_seek(it, k, kl), (void)0);
}

void __wrap_rocksdb_iter_next(rocksdb_iterator_t *it)
{
    if (is_poisoned() || it == nullptr)
        return;
    GUARDED(__real_rocksdb_iter_next(it), (void)0);
}

unsigned char __wrap_rocksdb_iter_valid(const rocksdb_iterator_t *it)
{
    if (is_poisoned() || it == nullptr)
        return 0;
    GUARDED(return __real_rocksdb_iter_valid(it), (void)0);
    return 0;
}

/* Only called while valid, so never poisoned before the call. */
const char *__wrap_rocksdb_iter_key(const rocksdb_iterator_t *it, size_t *kl)
{
    *kl = 0;
    if (is_poisoned() || it == nullptr)
        return "";
    GUARDED(return __real_rocksdb_iter_key(it, kl), (void)0);
    return "";
}

const char *__wrap_rocksdb_iter_value(const rocksdb_iterator_t *it, size_t *vl)
{
    *vl = 0;
    if (is_poisoned() || it == nullptr)
        return "";
    GUARDED(return __real_rocksdb_iter_value(it, vl), (void)0);
    return "";
}

/* A scan that a fault cut short reports it, so it is never taken for the
 * whole range. */
void __wrap_rocksdb_iter_get_error(const rocksdb_iterator_t *it, char **errptr)
{
    if (is_poisoned() || it == nullptr) /* a null iterator: the store was poisoned */
        return set_error(errptr);
    GUARDED(__real_rocksdb_iter_get_error(it, errptr), set_error(errptr));
}

void __wrap_rocksdb_iter_destroy(rocksdb_iterator_t *it)
{
    if (is_poisoned() || it == nullptr)
        return; /* leaked, as the database */
    GUARDED(__real_rocksdb_iter_destroy(it), (void)0);
}

/* ---- batches and read options: memory only, but they allocate ---- */

rocksdb_writebatch_t *__wrap_rocksdb_writebatch_create(void)
{
    GUARDED(return __real_rocksdb_writebatch_create(), (void)0);
    return nullptr; /* the write of a null batch reports the fault */
}

void __wrap_rocksdb_writebatch_put(rocksdb_writebatch_t *b, const char *k, size_t kl,
                                   const char *v, size_t vl)
{
    if (b != nullptr)
        GUARDED(__real_rocksdb_writebatch_put(b, k, kl, v, vl), (void)0);
}

void __wrap_rocksdb_writebatch_merge(rocksdb_writebatch_t *b, const char *k, size_t kl,
                                     const char *v, size_t vl)
{
    if (b != nullptr)
        GUARDED(__real_rocksdb_writebatch_merge(b, k, kl, v, vl), (void)0);
}

void __wrap_rocksdb_writebatch_delete(rocksdb_writebatch_t *b, const char *k, size_t kl)
{
    if (b != nullptr)
        GUARDED(__real_rocksdb_writebatch_delete(b, k, kl), (void)0);
}

void __wrap_rocksdb_writebatch_delete_range(rocksdb_writebatch_t *b, const char *s, size_t sl,
                                            const char *e, size_t el)
{
    if (b != nullptr)
        GUARDED(__real_rocksdb_writebatch_delete_range(b, s, sl, e, el), (void)0);
}

int __wrap_rocksdb_writebatch_count(rocksdb_writebatch_t *b)
{
    return b != nullptr ? __real_rocksdb_writebatch_count(b) : 0; /* reads a field */
}

rocksdb_readoptions_t *__wrap_rocksdb_readoptions_create(void)
{
    GUARDED(return __real_rocksdb_readoptions_create(), (void)0);
    return nullptr; /* reads with null options report the fault */
}

void __wrap_rocksdb_readoptions_set_iterate_upper_bound(rocksdb_readoptions_t *o, const char *k,
                                                        size_t kl)
{
    if (o != nullptr)
        GUARDED(__real_rocksdb_readoptions_set_iterate_upper_bound(o, k, kl), (void)0);
}

void __wrap_rocksdb_readoptions_set_snapshot(rocksdb_readoptions_t *o,
                                             const rocksdb_snapshot_t *s)
{
    if (o != nullptr)
        __real_rocksdb_readoptions_set_snapshot(o, s); /* sets a field */
}

} // extern "C"
