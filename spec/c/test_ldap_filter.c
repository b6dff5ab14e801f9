#include "ctest.h"
#include "lookup/ldap_filter.h"

static int expand(const char *tmpl, const char *const *vals, size_t n, char *out, size_t outlen,
                  char *err, size_t errlen)
{
    op_ldap_arg_t args[OP_LDAP_FILTER_ARGS];
    for (size_t i = 0; i < n; i++)
        args[i] = (op_ldap_arg_t){vals[i], strlen(vals[i])};
    return op_ldap_filter_expand(tmpl, args, n, out, outlen, err, errlen);
}

static const struct {
    const char *tmpl;
    const char *args[3];
    size_t nargs;
    const char *want; /* NULL: refused */
} cases[] = {
    {"(uid=%s)", {"alice"}, 1, "(uid=alice)"},
    {"(uid=%s)", {"*"}, 1, "(uid=\\2a)"},
    {"(uid=%s)", {"a*)(uid=*"}, 1, "(uid=a\\2a\\29\\28uid=\\2a)"},
    {"(uid=%s)", {"back\\slash"}, 1, "(uid=back\\5cslash)"},
    {"(mail=%s)", {"b\xc3\xbc@x"}, 1, "(mail=b\\c3\\bc@x)"},
    {"(cn=%s)", {"tab\there\nnl"}, 1, "(cn=tab\\09here\\0anl)"},
    {"(|(mail=%1)(mailLocalAddress=%1))", {"a@b"}, 1, "(|(mail=a@b)(mailLocalAddress=a@b))"},
    {"(&(uid=%s)(mail=%s))", {"u", "m"}, 2, "(&(uid=u)(mail=m))"},
    {"(&(uid=%2)(mail=%1))", {"m", "u"}, 2, "(&(uid=u)(mail=m))"},
    {"(uid=100%%)", {NULL}, 0, "(uid=100%)"},
    {"(uid=x*)", {NULL}, 0, "(uid=x*)"},        /* the template is trusted: a wildcard there is one */
    {"(uid=%s)", {NULL}, 0, NULL},             /* a missing argument */
    {"(uid=%s)", {"a", "b"}, 2, NULL},         /* an unused one */
    {"(uid=%2)", {"a"}, 1, NULL},
    {"(uid=%d)", {"a"}, 1, NULL},
    {"(uid=%", {"a"}, 1, NULL},
    {"(uid=%s", {"a"}, 1, NULL},
    {"uid=%s))", {"a"}, 1, NULL},
    {"", {NULL}, 0, NULL},
};

CTEST(expand_table)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char out[256], err[200] = "";
        int n = expand(cases[i].tmpl, cases[i].args, cases[i].nargs, out, sizeof out, err, sizeof err);
        if (cases[i].want == NULL) {
            if (n >= 0)
                fprintf(stderr, "  case %zu (%s): accepted as %s\n", i, cases[i].tmpl, out);
            CHECK_INT(n < 0, 1);
            CHECK(err[0] != '\0');
        } else {
            if (n < 0)
                fprintf(stderr, "  case %zu (%s): %s\n", i, cases[i].tmpl, err);
            CHECK_INT(n, (long long)strlen(cases[i].want));
            if (n >= 0)
                CHECK_STR(out, cases[i].want);
        }
    }
}

CTEST(escape_every_byte)
{
    /* Every byte alone: printable ASCII outside * ( ) \ stays, all else is \xx. */
    for (int c = 0; c < 256; c++) {
        char v = (char)c, out[8];
        int n = op_ldap_filter_escape(&v, 1, out, sizeof out);
        int plain = c >= 0x20 && c < 0x7f && c != '*' && c != '(' && c != ')' && c != '\\';
        CHECK_INT(n, plain ? 1 : 3);
        if (!plain) {
            char want[4];
            snprintf(want, sizeof want, "\\%02x", c);
            CHECK_STR(out, want);
        }
    }
}

CTEST(escape_keeps_embedded_nul)
{
    char out[32];
    CHECK_INT(op_ldap_filter_escape("a\0*", 3, out, sizeof out), 7);
    CHECK_STR(out, "a\\00\\2a");
}

CTEST(expand_refuses_what_does_not_fit)
{
    char out[16], err[100];
    const char *v[] = {"((((((((("};
    CHECK_INT(expand("(uid=%s)", v, 1, out, sizeof out, err, sizeof err), -1);
    CHECK(strstr(err, "longer") != NULL);
    CHECK_INT(op_ldap_filter_escape("abc", 3, out, 3), -1);
    CHECK_INT(op_ldap_filter_escape("abc", 3, out, 4), 3);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
