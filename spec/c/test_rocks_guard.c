/* C++ exceptions never cross the RocksDB C API (engine/counters/rocks_guard.cc).
 *
 * The exception is real, thrown inside the real library: a merge operator
 * (plain C) reports a merged value longer than std::string can hold, and
 * RocksDB's own std::string::assign throws std::length_error out of
 * rocksdb_get.  Without the guard this process ends in std::terminate.
 * One case, in steps: the exception poisons every store of the process,
 * which the later steps check, and the case ends with _exit, as outpostd
 * does after a fault (RocksDB's thread-local clean-up at exit() asserts on
 * the state the exception left). */
#include "counters/counters_store.h"
#include "counters/rocks_guard.h"
#include "ctest.h"

#include <rocksdb/c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char huge_value[8];

static char *merge_too_long(void *state, const char *key, size_t klen, const char *existing,
                            size_t elen, const char *const *ops, const size_t *lens, int nops,
                            unsigned char *success, size_t *len)
{
    (void)state, (void)key, (void)klen, (void)existing, (void)elen, (void)ops, (void)lens,
        (void)nops;
    *success = 1;
    *len = SIZE_MAX; /* past std::string's max_size(): assign throws before reading */
    return huge_value;
}

static char *merge_none(void *state, const char *key, size_t klen, const char *const *ops,
                        const size_t *lens, int nops, unsigned char *success, size_t *len)
{
    (void)state, (void)key, (void)klen, (void)ops, (void)lens, (void)nops;
    *success = 0;
    *len = 0;
    return NULL;
}

static void no_destructor(void *state) { (void)state; }
static void no_delete(void *state, const char *v, size_t n) { (void)state, (void)v, (void)n; }
static const char *merge_name(void *state)
{
    (void)state;
    return "too-long";
}

static char side_dir[64], store_dir[64];
static rocksdb_t *side_db;
static op_rocks_t *store;
static op_limit_conf_t limits[1];
static op_counters_conf_t cfg;

static void make_dir(char *dir, size_t n)
{
    snprintf(dir, n, "/tmp/outpost-guard-XXXXXX");
    if (mkdtemp(dir) == NULL)
        abort();
}

/* The counters' own store, opened and used before anything threw. */
static void the_store_works_before(void)
{
    make_dir(store_dir, sizeof store_dir);
    limits[0] = (op_limit_conf_t){.name = "rcpt", .max = 5, .window = 3600, .resolution = 60};
    cfg = (op_counters_conf_t){.state_dir = store_dir, .limits = limits, .nlimits = 1,
                               .reservation_timeout = 30};
    char err[512] = "";
    store = op_rocks_open(NULL, &cfg, err, sizeof err);
    CHECK(store != NULL);
    op_counters_answer_t a;
    CHECK_INT(op_rocks_add(store, "rcpt", "alice", 1, -1, &a), 0);
    CHECK(a.ok);
    CHECK(op_rocks_health(store) == NULL);
    CHECK(op_rocks_guard_fault() == NULL);
}

static void an_exception_in_a_read_comes_back_as_an_error(void)
{
    make_dir(side_dir, sizeof side_dir);
    rocksdb_options_t *o = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(o, 1);
    rocksdb_options_set_merge_operator(o, rocksdb_mergeoperator_create(
                                              NULL, no_destructor, merge_too_long, merge_none,
                                              no_delete, merge_name));
    char *err = NULL;
    side_db = rocksdb_open(o, side_dir, &err);
    CHECK(side_db != NULL && err == NULL);
    rocksdb_writeoptions_t *wo = rocksdb_writeoptions_create();
    rocksdb_merge(side_db, wo, "k", 1, "v", 1, &err);
    CHECK(err == NULL);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    size_t vl = 0;
    char *v = rocksdb_get(side_db, ro, "k", 1, &vl, &err); /* throws inside */
    CHECK(v == NULL);
    CHECK(err != NULL && strstr(err, "rocksdb_get") != NULL);
    CHECK(err != NULL && strstr(err, "restart") != NULL);
    free(err);
    CHECK(op_rocks_guard_fault() != NULL);
    /* RocksDB left its state half-done (a read after this one asserts
     * inside the library, tried): no later call may reach it. */
    err = NULL;
    v = rocksdb_get(side_db, ro, "k", 1, &vl, &err);
    CHECK(v == NULL && err != NULL);
    free(err);
    rocksdb_iterator_t *it = rocksdb_create_iterator(side_db, ro);
    rocksdb_iter_seek(it, "k", 1);
    CHECK(!rocksdb_iter_valid(it));
    err = NULL;
    rocksdb_iter_get_error(it, &err);
    CHECK(err != NULL); /* a scan cut short is never taken for the whole range */
    free(err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    rocksdb_writeoptions_destroy(wo);
    rocksdb_close(side_db); /* left, not closed */
}

/* The counters refuse to count (the limit answers 4xx), say why, and do
 * not try to open the store again. */
static void the_store_counts_nothing_after(void)
{
    op_counters_answer_t a;
    CHECK_INT(op_rocks_add(store, "rcpt", "alice", 1, -1, &a), OP_COUNTERS_EIO);
    CHECK_INT(op_rocks_reserve(store, "rcpt", "bob", "i1", 1, -1, &a), OP_COUNTERS_EIO);
    const char *why = op_rocks_health(store);
    CHECK(why != NULL && strstr(why, "threw") != NULL);
    op_rocks_close(store);
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", store_dir, side_dir);
    CHECK_INT(system(cmd), 0);
}

CTEST(an_exception_stops_at_the_guard)
{
    the_store_works_before();
    an_exception_in_a_read_comes_back_as_an_error();
    the_store_counts_nothing_after();
    fflush(stdout);
    _exit(ctest_failed_here ? 1 : 0);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
