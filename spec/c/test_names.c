#include "ctest.h"
#include "lib/names.h"

static const struct {
    const char *in;
    const char *want; /* NULL: refused */
} cases[] = {
    {"example.org", "example.org"},
    {"Example.ORG", "example.org"},
    {"example.org.", "example.org"},
    {"_dmarc.example.org", "_dmarc.example.org"},
    {"xn--bcher-kva.example", "xn--bcher-kva.example"},
    {"b\xc3\xbc" "cher.example", "xn--bcher-kva.example"},
    {"B\xc3\x9c" "CHER.Example.", "xn--bcher-kva.example"},
    {"stra\xc3\x9f" "e.de", "xn--strae-oqa.de"}, /* non-transitional: sharp s kept */
    {"", NULL},
    {".", NULL},
    {"a..b", NULL},
    {".example.org", NULL},
    {"exa mple.org", NULL},
    {"user@example.org", NULL},
    {"exa/mple.org", NULL},
    {"exa\tmple.org", NULL},
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org", NULL}, /* 64 */
    {"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org",
     "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.org"}, /* 63 */
    {"\xff\xfe.example", NULL},
};

CTEST(normalize_table)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[OP_NAME_MAX + 1];
        int rc = op_name_normalize(cases[i].in, strlen(cases[i].in), out, sizeof out);
        if (cases[i].want == NULL) {
            if (rc != -1)
                fprintf(stderr, "  case %zu (%s): accepted as %s\n", i, cases[i].in, out);
            CHECK_INT(rc, -1);
        } else {
            CHECK_INT(rc, 0);
            if (rc == 0)
                CHECK_STR(out, cases[i].want);
        }
    }
}

CTEST(normalize_refuses_embedded_nul_and_long_names)
{
    char out[OP_NAME_MAX + 1];
    CHECK_INT(op_name_normalize("a\0b.org", 7, out, sizeof out), -1);
    char longname[300];
    for (int i = 0; i < 299; i++)
        longname[i] = (i % 50 == 49) ? '.' : 'a';
    longname[299] = '\0';
    CHECK_INT(op_name_normalize(longname, strlen(longname), out, sizeof out), -1);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
