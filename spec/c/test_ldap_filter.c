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

/* The compiled path against the reference, byte for byte: the same result,
 * output and message. */
static void check_same(const char *tmpl, const op_ldap_arg_t *args, size_t nargs, size_t outlen)
{
    char out[600], err[200] = "", rout[600], rerr[200] = "";
    int n = op_ldap_filter_expand(tmpl, args, nargs, out, outlen, err, sizeof err);
    int r = op__ldap_filter_expand_ref(tmpl, args, nargs, rout, outlen, rerr, sizeof rerr);
    if (n != r || (n >= 0 && strcmp(out, rout) != 0) || (n < 0 && strcmp(err, rerr) != 0))
        fprintf(stderr, "  template \"%s\", %zu args, outlen %zu: got %d \"%s\" (%s), want %d \"%s\" (%s)\n",
                tmpl, nargs, outlen, n, n >= 0 ? out : "", err, r, r >= 0 ? rout : "", rerr);
    CHECK_INT(n, r);
    if (n >= 0 && r >= 0)
        CHECK_STR(out, rout);
    else
        CHECK_STR(err, rerr);
}

CTEST(expand_escapes_exactly)
{
    /* RFC 4515: * ( ) \ NUL and every byte >= 0x80 as \XX, through the
     * compiled path, twice (compiled, then from the memo). */
    op_ldap_arg_t a[2] = {{"a\0*()\\\xc3\xa9z", 9}, {"\x7f\x80\xff", 3}};
    for (int round = 0; round < 2; round++) {
        char out[200], err[200] = "";
        int n = op_ldap_filter_expand("(&(uid=%1)(cn=%2*))", a, 2, out, sizeof out, err, sizeof err);
        const char *want = "(&(uid=a\\00\\2a\\28\\29\\5c\\c3\\a9z)(cn=\\7f\\80\\ff*))";
        CHECK_INT(n, (long long)strlen(want));
        CHECK_STR(out, want);
    }
}

CTEST(compile_and_fill)
{
    op_ldap_filter_t f;
    CHECK_INT(op_ldap_filter_compile("(|(mail=%1)(uid=%2)(x=%%%1))", &f), 0);
    op_ldap_arg_t a[2] = {{"m*", 2}, {"u", 1}};
    char out[64];
    CHECK_INT(op_ldap_filter_fill(&f, a, 2, out, sizeof out), 30);
    CHECK_STR(out, "(|(mail=m\\2a)(uid=u)(x=%m\\2a))");
    CHECK_INT(op_ldap_filter_fill(&f, a, 1, out, sizeof out), -1); /* %2 missing */
    CHECK_INT(op_ldap_filter_fill(&f, a, 3, out, sizeof out), -1); /* 3 unused */
    CHECK_INT(op_ldap_filter_fill(&f, a, 2, out, 30), -1);         /* no room for the NUL */
    CHECK_INT(op_ldap_filter_fill(&f, a, 2, out, 31), 30);
    CHECK_INT(op_ldap_filter_compile("(uid=%x)", &f), -1);
    CHECK_INT(op_ldap_filter_compile("(uid=%s))", &f), -1);
    CHECK_INT(op_ldap_filter_compile("((uid=%s)", &f), -1);
    CHECK_INT(op_ldap_filter_compile("(uid=%", &f), -1);
    CHECK_INT(op_ldap_filter_compile("%s%s%s%s%s%s%s%s%s%s", &f), -1); /* a 10th argument */
    char big[OP_LDAP_FILTER_TMPL_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(op_ldap_filter_compile(big, &f), -1);
    big[sizeof big - 2] = '\0';
    CHECK_INT(op_ldap_filter_compile(big, &f), 0);
}

CTEST(memo_follows_the_bytes)
{
    /* One buffer, its template changed between calls (as a freed Lua string's
     * address may be reused), and more templates than the memo holds. */
    char tmpl[64], out[128], err[200];
    op_ldap_arg_t a[1] = {{"v", 1}};
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < 20; i++) {
            snprintf(tmpl, sizeof tmpl, "(a%d=%%s)", i);
            char want[64];
            snprintf(want, sizeof want, "(a%d=v)", i);
            int n = op_ldap_filter_expand(tmpl, a, 1, out, sizeof out, err, sizeof err);
            CHECK_INT(n, (long long)strlen(want));
            CHECK_STR(out, want);
        }
    }
}

CTEST(property_compiled_equals_reference)
{
    /* Random templates from pieces (valid and not) and random arguments
     * with the bytes that must be escaped, at every output size from too
     * small to roomy. */
    static const char *const bits[] = {"(", ")", "uid=", "%s", "%1", "%2", "%3", "%%", "%x",
                                       "%", "*", "&", "|", "!", "=", "a", "%9", "%0"};
    static const char vbytes[] = {'a', '*', '(', ')', '\\', '\0', '\x80', '\xff', '\n', ' ', '%'};
    unsigned seed = 12345;
    for (int iter = 0; iter < 3000; iter++) {
        char tmpl[128] = "";
        int npieces = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 8;
        for (int i = 0; i < npieces; i++) {
            seed = seed * 1103515245u + 12345u;
            strcat(tmpl, bits[(seed >> 16) % (sizeof bits / sizeof bits[0])]);
        }
        char vals[4][16];
        op_ldap_arg_t args[4];
        seed = seed * 1103515245u + 12345u;
        size_t nargs = (seed >> 16) % 5;
        for (size_t i = 0; i < nargs; i++) {
            seed = seed * 1103515245u + 12345u;
            size_t len = (seed >> 16) % 12;
            for (size_t j = 0; j < len; j++) {
                seed = seed * 1103515245u + 12345u;
                vals[i][j] = vbytes[(seed >> 16) % sizeof vbytes];
            }
            args[i] = (op_ldap_arg_t){vals[i], len};
        }
        for (size_t outlen = 1; outlen < 80; outlen += 1 + outlen / 4)
            check_same(tmpl, args, nargs, outlen);
        check_same(tmpl, args, nargs, 600);
    }
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
