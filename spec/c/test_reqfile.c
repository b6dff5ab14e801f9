/* The request-dump codec (engine/lib/reqfile.c) that outpostctl explain -f
 * and outpostd ask --dry-run -f share. */
#include "ctest.h"
#include "lib/reqfile.h"

/* Parses a copy of text (the codec cuts it in place). */
static int parse(const char *text, size_t max_attrs, op_reqfile_t *f, char **copy)
{
    *copy = strdup(text);
    return op_reqfile_parse(*copy, strlen(text), max_attrs, f);
}

CTEST(requests_lines_and_tenants)
{
    op_reqfile_t f;
    char *t;
    CHECK_INT(parse("# a replay\n"
                    "request=smtpd_access_policy\r\n"
                    "sender=a@example.org\n"
                    "\n"
                    "\n"
                    "# tenant: lm  (the listener's)\n"
                    "sender=b@example.org\n"
                    "# a comment inside: not a tenant: x\n"
                    "recipient=c@example.net\n"
                    "\n"
                    "sender=\n",
                    16, &f, &t),
              0);
    CHECK_INT(f.n, 3);
    CHECK_INT(f.reqs[0].n, 2);
    CHECK_INT(f.reqs[0].line, 2);
    CHECK_STR(f.reqs[0].attrs[0], "request=smtpd_access_policy");
    CHECK_STR(f.reqs[0].attrs[1], "sender=a@example.org");
    CHECK_STR(f.reqs[0].tenant, "");
    CHECK_INT(f.reqs[1].n, 2);
    CHECK_INT(f.reqs[1].line, 7);
    CHECK_STR(f.reqs[1].tenant, "lm");
    CHECK_STR(f.reqs[1].attrs[1], "recipient=c@example.net");
    CHECK_INT(f.reqs[2].n, 1);
    CHECK_INT(f.reqs[2].line, 11);
    CHECK_STR(f.reqs[2].attrs[0], "sender=");
    op_reqfile_free(&f);
    free(t);
}

CTEST(refusals_name_the_line)
{
    static const struct {
        const char *text;
        size_t max_attrs;
        const char *err;
        size_t line;
        const char *err_text;
    } cases[] = {
        {"sender=a\nnot an attribute\n\n", 16, "not NAME=VALUE", 2, "not an attribute"},
        {"=a\n", 16, "not NAME=VALUE", 1, "=a"},
        {"send er=a\n", 16, "the name has a character Postfix does not send", 1, "send er=a"},
        {"a=1\tb=2\n", 16, "contains a tab or a line end", 1, "a=1\tb=2"},
        {"a=1\nb=2\nc=3\n\n", 2, "too many attributes in one request", 3, "c=3"},
        {"# only comments\n\n\n", 16, "no request in it (NAME=VALUE lines, a blank line after each request)", 0, ""},
        {"", 16, "no request in it (NAME=VALUE lines, a blank line after each request)", 0, ""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        op_reqfile_t f;
        char *t;
        CHECK_INT(parse(cases[i].text, cases[i].max_attrs, &f, &t), -1);
        CHECK_STR(f.err, cases[i].err);
        CHECK_INT(f.err_line, cases[i].line);
        CHECK_STR(f.err_text, cases[i].err_text);
        CHECK_INT(f.n, 0);
        op_reqfile_free(&f);
        free(t);
    }
}

CTEST(a_nul_byte_is_not_a_dump)
{
    char text[] = "sender=a\0b\n\n";
    op_reqfile_t f;
    CHECK_INT(op_reqfile_parse(text, sizeof text - 1, 16, &f), -1);
    CHECK_STR(f.err, "a NUL byte: not a request dump");
    op_reqfile_free(&f);
}

CTEST(a_long_line_is_quoted_short)
{
    char text[400];
    memset(text, 'x', 300);
    text[300] = '\0';
    op_reqfile_t f;
    CHECK_INT(op_reqfile_parse(text, 300, 16, &f), -1);
    CHECK_INT(strlen(f.err_text), 80);
    op_reqfile_free(&f);
}

CTEST(bad_attr_words)
{
    CHECK(op_reqfile_bad_attr("client_address=192.0.2.1") == NULL);
    CHECK(op_reqfile_bad_attr("x-y=") == NULL);
    CHECK_STR(op_reqfile_bad_attr("novalue"), "not NAME=VALUE");
    CHECK_STR(op_reqfile_bad_attr("a=b\r"), "contains a tab or a line end");
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
