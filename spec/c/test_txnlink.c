/* Transaction links: aliases merge, keys move, TTL and size bounds. */
#include "ctest.h"
#include "lookup/txnlink.h"

static const char *field(op_txnlink_t *t, const char *key, const char *name, uint64_t now)
{
    const char *keys[] = {key};
    size_t n = 0;
    const op_txnlink_field_t *f = op_txnlink_get(t, keys, 1, &n, now);
    for (size_t i = 0; f != NULL && i < n; i++)
        if (strcmp(f[i].name, name) == 0)
            return f[i].value;
    return NULL;
}

static void put1(op_txnlink_t *t, const char *k1, const char *k2, const char *name,
                 const char *value, uint64_t now)
{
    const char *keys[] = {k1, k2};
    op_txnlink_field_t f = {name, value};
    CHECK_INT(op_txnlink_put(t, keys, 2, &f, 1, now), 0);
}

/* The first RCPT has no queue id, a later one has: one entry, found by both. */
CTEST(aliases_merge)
{
    op_txnlink_t *t = op_txnlink_new(10, 60000);
    put1(t, "i:inst1", "e:env1", "rcpt:a", "DUNNO", 0);
    put1(t, "i:inst1", "q:QID1", "rcpt:b", "REJECT", 1);
    CHECK_INT(op_txnlink_count(t), 1);
    CHECK_STR(field(t, "q:QID1", "rcpt:a", 2), "DUNNO");
    CHECK_STR(field(t, "e:env1", "rcpt:b", 2), "REJECT");
    put1(t, "q:QID1", "", "rcpt:a", "OK", 3); /* a later value replaces */
    CHECK_STR(field(t, "i:inst1", "rcpt:a", 4), "OK");
    CHECK(field(t, "q:other", "rcpt:a", 4) == NULL);
    op_txnlink_free(t);
}

/* A key written with another entry's key moves to it; the entry it left,
 * without keys, is gone. */
CTEST(key_moves)
{
    op_txnlink_t *t = op_txnlink_new(10, 60000);
    put1(t, "i:old", "e:env", "n", "old", 0);
    op_txnlink_unlink(t, "e:env");
    put1(t, "i:new", "e:env", "n", "new", 1);
    CHECK_INT(op_txnlink_count(t), 2);
    CHECK_STR(field(t, "e:env", "n", 2), "new");
    CHECK_STR(field(t, "i:old", "n", 2), "old");
    put1(t, "i:x", "", "n", "x", 3);
    put1(t, "i:new", "i:x", "m", "1", 4); /* i:x leaves its entry, which goes */
    CHECK_INT(op_txnlink_count(t), 2);
    CHECK_STR(field(t, "i:x", "n", 5), "new");
    op_txnlink_forget(t, "e:env");
    CHECK(field(t, "i:new", "n", 6) == NULL);
    CHECK(field(t, "i:x", "n", 6) == NULL);
    CHECK_INT(op_txnlink_count(t), 1);
    op_txnlink_free(t);
}

CTEST(ttl_and_capacity)
{
    op_txnlink_t *t = op_txnlink_new(3, 1000);
    put1(t, "a", "", "n", "1", 0);
    put1(t, "b", "", "n", "2", 100);
    put1(t, "c", "", "n", "3", 200);
    put1(t, "a", "", "n", "1b", 300); /* a is now the newest */
    put1(t, "d", "", "n", "4", 400);  /* full: b, the least recently written, goes */
    CHECK_INT(op_txnlink_count(t), 3);
    CHECK(field(t, "b", "n", 400) == NULL);
    CHECK_STR(field(t, "a", "n", 400), "1b");
    CHECK_STR(field(t, "c", "n", 1199), "3");
    CHECK(field(t, "c", "n", 1200) == NULL); /* not written for ttl */
    CHECK_STR(field(t, "a", "n", 1200), "1b");
    CHECK(field(t, "a", "n", 1300) == NULL);
    op_txnlink_free(t);
}

CTEST(bounds)
{
    op_txnlink_t *t = op_txnlink_new(4, 1000);
    const char *none[] = {"", NULL};
    op_txnlink_field_t f = {"n", "v"};
    CHECK_INT(op_txnlink_put(t, none, 2, &f, 1, 0), -1);
    char big[OP_TXNLINK_MAX_LEN + 10];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *toolong[] = {big};
    CHECK_INT(op_txnlink_put(t, toolong, 1, &f, 1, 0), -1); /* an over-long key is no key */
    op_txnlink_field_t longv = {"v", big};
    const char *k[] = {"k"};
    CHECK_INT(op_txnlink_put(t, k, 1, &longv, 1, 0), 0);
    CHECK_INT(strlen(field(t, "k", "v", 1)), OP_TXNLINK_MAX_LEN); /* values are cut */
    char names[OP_TXNLINK_MAX_FIELDS + 1][16];
    int rc = 0;
    for (int i = 0; i <= OP_TXNLINK_MAX_FIELDS; i++) {
        snprintf(names[i], sizeof names[i], "f%d", i);
        op_txnlink_field_t g = {names[i], "x"};
        rc = op_txnlink_put(t, k, 1, &g, 1, 2);
    }
    CHECK_INT(rc, -1); /* the 65th field does not fit (k already has "v") */
    const char *nine[] = {"k", "1", "2", "3", "4", "5", "6", "7", "8"};
    op_txnlink_put(t, nine, 9, NULL, 0, 3);
    CHECK(field(t, "7", "v", 3) != NULL);
    CHECK(field(t, "8", "v", 3) == NULL); /* at most 8 keys */
    op_txnlink_free(t);
}

/* Many transactions through a small table: no leak, no stale key. */
CTEST(churn)
{
    op_txnlink_t *t = op_txnlink_new(16, 50);
    char k1[32], k2[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(k1, sizeof k1, "i:%d", i);
        snprintf(k2, sizeof k2, "e:%d", i % 7);
        op_txnlink_unlink(t, k2);
        put1(t, k1, k2, "n", k1, (uint64_t)i);
        CHECK_STR(field(t, k2, "n", (uint64_t)i), k1);
        CHECK(op_txnlink_count(t) <= 16);
    }
    op_txnlink_free(t);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
