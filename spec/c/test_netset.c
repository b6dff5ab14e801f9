/* CIDR sets: longest-prefix match over IPv4 and IPv6, and what is refused. */
#include "ctest.h"
#include "lib/netset.h"

static op_netset_t *campus(void)
{
    op_netset_t *s = op_netset_new();
    char err[200];
    static const char *const nets[][2] = {
        {"10.0.0.0/8", "campus"},        {"10.1.0.0/16", "area-a"},
        {"10.1.2.0/24", "area-a-lab"},   {"192.0.2.7", "one-host"},
        {"2001:db8::/32", "campus6"},    {"2001:db8:1::/48", "area-b"},
        {"0.0.0.0/0", "world"},
    };
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        CHECK_INT(op_netset_add(s, nets[i][0], nets[i][1], err, sizeof err), 0);
    return s;
}

CTEST(longest_prefix)
{
    op_netset_t *s = campus();
    static const struct {
        const char *addr, *label;
        int prefix;
    } cases[] = {
        {"10.9.9.9", "campus", 8},          {"10.1.9.9", "area-a", 16},
        {"10.1.2.3", "area-a-lab", 24},     {"10.1.2.255", "area-a-lab", 24},
        {"10.1.3.0", "area-a", 16},         {"192.0.2.7", "one-host", 32},
        {"192.0.2.8", "world", 0},          {"::ffff:10.1.2.3", "area-a-lab", 24},
        {"2001:db8::1", "campus6", 32},     {"2001:db8:1:2::1", "area-b", 48},
        {"2001:db8:2::1", "campus6", 32},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int prefix = -1;
        CHECK_STR(op_netset_match(s, cases[i].addr, &prefix), cases[i].label);
        CHECK_INT(prefix, cases[i].prefix);
    }
    CHECK(op_netset_match(s, "2001:db9::1", NULL) == NULL); /* no IPv6 default */
    CHECK(op_netset_match(s, "not an address", NULL) == NULL);
    CHECK(op_netset_match(s, "", NULL) == NULL);
    CHECK_INT(op_netset_count(s), 7);
    op_netset_free(s);
}

CTEST(refused)
{
    op_netset_t *s = op_netset_new();
    char err[200];
    static const char *const bad[] = {
        "10.1.2.3/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.0.0/8", "example.org",
        "2001:db8::1/32", "2001:db8::/129", "", "10.0.0.0/8/8", "300.1.1.1",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        int rc = op_netset_add(s, bad[i], NULL, err, sizeof err);
        if (rc == 0)
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK_INT(rc, -1);
        CHECK(err[0] != '\0');
    }
    CHECK_INT(op_netset_count(s), 0);
    CHECK(strstr((op_netset_add(s, "10.1.2.3/8", NULL, err, sizeof err), err), "host bits") != NULL);
    op_netset_free(s);
}

CTEST(relabel_and_null_label)
{
    op_netset_t *s = op_netset_new();
    char err[200];
    CHECK_INT(op_netset_add(s, "192.0.2.0/24", "old", err, sizeof err), 0);
    CHECK_INT(op_netset_add(s, "192.0.2.0/24", "new", err, sizeof err), 0);
    CHECK_STR(op_netset_match(s, "192.0.2.1", NULL), "new");
    CHECK_INT(op_netset_count(s), 1);
    CHECK_INT(op_netset_add(s, "198.51.100.0/24", NULL, err, sizeof err), 0);
    CHECK_STR(op_netset_match(s, "198.51.100.200", NULL), "");
    op_netset_free(s);
}

CTEST(many_prefixes)
{
    op_netset_t *s = op_netset_new();
    char err[200], net[64], addr[64];
    for (int i = 0; i < 65536; i++) {
        snprintf(net, sizeof net, "10.%d.%d.0/24", i / 256, i % 256);
        CHECK_INT(op_netset_add(s, net, i % 2 ? "odd" : "even", err, sizeof err), 0);
    }
    CHECK_INT(op_netset_count(s), 65536);
    for (int i = 0; i < 65536; i += 997) {
        snprintf(addr, sizeof addr, "10.%d.%d.77", i / 256, i % 256);
        CHECK_STR(op_netset_match(s, addr, NULL), i % 2 ? "odd" : "even");
    }
    CHECK(op_netset_match(s, "11.0.0.1", NULL) == NULL);
    op_netset_free(s);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
