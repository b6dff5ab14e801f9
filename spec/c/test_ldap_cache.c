#include "ctest.h"
#include "lookup/ldap_cache.h"

static int released[64];

static void release(void *v)
{
    released[(int)(long)v]++;
}

#define V(n) ((void *)(long)(n))

CTEST(get_put_and_expiry)
{
    op_ldap_cache_t *c = op_ldap_cache_new(10, release);
    op_ldap_cache_put(c, "a", 1, V(1), 100.0);
    CHECK(op_ldap_cache_get(c, "a", 1, 50.0) == V(1));
    CHECK(op_ldap_cache_get(c, "b", 1, 50.0) == NULL);
    CHECK(op_ldap_cache_get(c, "a", 1, 100.0) == NULL); /* expired: dropped and released */
    CHECK_INT(released[1], 1);
    CHECK_INT(op_ldap_cache_count(c), 0);
    op_ldap_cache_free(c);
}

CTEST(keys_are_bytes_with_nul)
{
    op_ldap_cache_t *c = op_ldap_cache_new(10, release);
    op_ldap_cache_put(c, "a\0b", 3, V(1), 100.0);
    op_ldap_cache_put(c, "a\0c", 3, V(2), 100.0);
    CHECK(op_ldap_cache_get(c, "a\0b", 3, 0) == V(1));
    CHECK(op_ldap_cache_get(c, "a\0c", 3, 0) == V(2));
    CHECK(op_ldap_cache_get(c, "a", 1, 0) == NULL);
    op_ldap_cache_free(c);
    CHECK_INT(released[1], 1);
    CHECK_INT(released[2], 1);
}

CTEST(replacing_releases_the_old_value)
{
    op_ldap_cache_t *c = op_ldap_cache_new(10, release);
    op_ldap_cache_put(c, "k", 1, V(1), 100.0);
    op_ldap_cache_put(c, "k", 1, V(2), 100.0);
    CHECK_INT(released[1], 1);
    CHECK_INT(op_ldap_cache_count(c), 1);
    CHECK(op_ldap_cache_get(c, "k", 1, 0) == V(2));
    op_ldap_cache_free(c);
}

CTEST(lru_bound_evicts_least_recently_used)
{
    op_ldap_cache_t *c = op_ldap_cache_new(3, release);
    op_ldap_cache_put(c, "1", 1, V(1), 100.0);
    op_ldap_cache_put(c, "2", 1, V(2), 100.0);
    op_ldap_cache_put(c, "3", 1, V(3), 100.0);
    CHECK(op_ldap_cache_get(c, "1", 1, 0) == V(1)); /* 1 is now the most recent */
    op_ldap_cache_put(c, "4", 1, V(4), 100.0);     /* evicts 2 */
    CHECK_INT(released[2], 1);
    CHECK_INT(op_ldap_cache_count(c), 3);
    CHECK(op_ldap_cache_get(c, "2", 1, 0) == NULL);
    CHECK(op_ldap_cache_get(c, "1", 1, 0) == V(1));
    CHECK(op_ldap_cache_get(c, "3", 1, 0) == V(3));
    op_ldap_cache_resize(c, 1); /* keeps only the most recent: 3 */
    CHECK_INT(op_ldap_cache_count(c), 1);
    CHECK(op_ldap_cache_get(c, "3", 1, 0) == V(3));
    CHECK_INT(released[1] + released[4], 2);
    op_ldap_cache_free(c);
}

CTEST(zero_bound_keeps_nothing)
{
    op_ldap_cache_t *c = op_ldap_cache_new(0, release);
    op_ldap_cache_put(c, "k", 1, V(5), 100.0);
    CHECK_INT(released[5], 1);
    CHECK(op_ldap_cache_get(c, "k", 1, 0) == NULL);
    op_ldap_cache_free(c);
}

CTEST(take_removes_without_release)
{
    op_ldap_cache_t *c = op_ldap_cache_new(10, release);
    op_ldap_cache_put(c, "k", 1, V(6), 100.0);
    CHECK(op_ldap_cache_take(c, "k", 1) == V(6));
    CHECK(op_ldap_cache_take(c, "k", 1) == NULL);
    CHECK_INT(released[6], 0);
    op_ldap_cache_free(c);
}

CTEST(many_keys_grow_the_table)
{
    /* Bounded: 20000 keys through a cache of 5000. */
    op_ldap_cache_t *c = op_ldap_cache_new(5000, NULL);
    char k[32];
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(k, sizeof k, "key%d", i);
        op_ldap_cache_put(c, k, (size_t)n, V(i + 1), 100.0);
    }
    CHECK_INT(op_ldap_cache_count(c), 5000);
    int found = 0;
    for (int i = 0; i < 20000; i++) {
        int n = snprintf(k, sizeof k, "key%d", i);
        void *v = op_ldap_cache_get(c, k, (size_t)n, 0);
        if (v != NULL) {
            CHECK(v == V(i + 1));
            CHECK(i >= 15000); /* only the newest survive */
            found++;
        }
    }
    CHECK_INT(found, 5000);
    op_ldap_cache_free(c);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
