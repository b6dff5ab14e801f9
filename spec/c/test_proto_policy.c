/* Unit tests of the Postfix policy protocol codec (engine/proto/proto_policy.c).
 *
 * Most cases are a table: each input is parsed whole, byte by byte, split in
 * two at every point and (short inputs) in three at every pair of points.
 * Every call gets a fresh heap copy of exactly the bytes "received so far"
 * and the previous copy is freed, so ASan catches a parser that reads past
 * len or keeps a pointer into an old buffer. */
#include "ctest.h"
#include "core/mem.h"
#include "proto/proto_policy.h"

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>

/* ---------------------------------------------------------------- helpers */

#define ALL ((ssize_t)-1000) /* want: a request of the whole input */
#define E(code) (-(ssize_t)OP_POLICY_##code)
#define LIM(l, a, r) {.max_line = (l), .max_attrs = (a), .max_request = (r)}

typedef struct {
    const char *name;
    const char *in;
    size_t in_len;          /* 0: strlen(in) */
    op_policy_limits_t lim; /* zero fields: the defaults */
    ssize_t want;           /* ALL, a length, 0 (need more) or E(...) */
    const char *attrs[64];  /* name, value, ..., NULL: checked when want > 0 */
} pcase_t;

static void failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void failf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("  ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    ctest_failed_here = 1;
}

static size_t case_len(const pcase_t *c) { return c->in_len ? c->in_len : strlen(c->in); }

static char *copy_of(const char *s, size_t n)
{
    char *d = op_malloc(n);
    memcpy(d, s, n);
    return d;
}

/* Feeds c->in cut at the increasing offsets cuts[0..ncuts) (the last being
 * the whole length) until the parser answers non-zero.  Each call gets a
 * fresh copy; the last one is left in *bufp for the attribute check. */
static ssize_t feed_cuts(op_policy_parser_t *p, const char *in, const size_t *cuts,
                         size_t ncuts, char **bufp)
{
    ssize_t r = 0;
    *bufp = NULL;
    for (size_t i = 0; i < ncuts; i++) {
        free(*bufp);
        *bufp = copy_of(in, cuts[i]);
        r = op_policy_parse(p, *bufp, cuts[i]);
        if (r != 0)
            break;
    }
    return r;
}

/* Checks a result against the case; how says how it was fed. */
static void check_result(const pcase_t *c, const op_policy_parser_t *p, ssize_t r,
                         const char *buf, const char *how)
{
    ssize_t want = c->want == ALL ? (ssize_t)case_len(c) : c->want;
    if (r != want) {
        failf("case %s (%s): got %zd (%s), want %zd (%s)", c->name, how, r,
              r < 0 ? op_policy_strerror(r) : "-", want,
              want < 0 ? op_policy_strerror(want) : "-");
        return;
    }
    if (r <= 0)
        return;
    size_t n = 0;
    while (c->attrs[2 * n] != NULL)
        n++;
    if (op_policy_nattrs(p) != n) {
        failf("case %s (%s): %zu attributes, want %zu", c->name, how, op_policy_nattrs(p), n);
        return;
    }
    const op_policy_attr_t *a = op_policy_attrs(p);
    for (size_t i = 0; i < n; i++) {
        const char *wn = c->attrs[2 * i], *wv = c->attrs[2 * i + 1];
        if (a[i].name < buf || a[i].value + a[i].value_len > buf + r)
            failf("case %s (%s): attribute %zu points outside the request", c->name, how, i);
        else if (a[i].name_len != strlen(wn) || memcmp(a[i].name, wn, a[i].name_len) != 0 ||
                 a[i].value_len != strlen(wv) || memcmp(a[i].value, wv, a[i].value_len) != 0)
            failf("case %s (%s): attribute %zu is \"%.*s\"=\"%.*s\", want \"%s\"=\"%s\"",
                  c->name, how, i, (int)a[i].name_len, a[i].name, (int)a[i].value_len,
                  a[i].value, wn, wv);
    }
}

static void run_cuts(const pcase_t *c, const size_t *cuts, size_t ncuts, const char *how)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, &c->lim);
    char *buf;
    ssize_t r = feed_cuts(&p, c->in, cuts, ncuts, &buf);
    check_result(c, &p, r, buf, how);
    free(buf);
    op_policy_parser_free(&p);
}

/* Whole, byte by byte, every 2-way split, and every 3-way split of short
 * inputs. */
static void run_case(const pcase_t *c)
{
    size_t len = case_len(c);
    size_t cuts[3];
    char how[64];

    cuts[0] = len;
    run_cuts(c, cuts, 1, "whole");
    if (ctest_failed_here)
        return;

    size_t *each = op_malloc((len + 1) * sizeof(size_t));
    for (size_t i = 0; i < len; i++)
        each[i] = i + 1;
    run_cuts(c, each, len, "byte by byte");
    free(each);

    for (size_t s = 1; s < len && !ctest_failed_here; s++) {
        cuts[0] = s;
        cuts[1] = len;
        snprintf(how, sizeof(how), "split at %zu", s);
        run_cuts(c, cuts, 2, how);
    }
    if (len > 48)
        return;
    for (size_t s = 1; s < len && !ctest_failed_here; s++)
        for (size_t t = s + 1; t < len && !ctest_failed_here; t++) {
            cuts[0] = s;
            cuts[1] = t;
            cuts[2] = len;
            snprintf(how, sizeof(how), "split at %zu and %zu", s, t);
            run_cuts(c, cuts, 3, how);
        }
}

/* A growable byte string. */
typedef struct {
    char *p;
    size_t len, cap;
} str_t;

static void str_add(str_t *s, const void *data, size_t n)
{
    if (s->len + n > s->cap) {
        s->cap = (s->len + n) * 2 + 64;
        s->p = op_realloc(s->p, s->cap);
    }
    memcpy(s->p + s->len, data, n);
    s->len += n;
}

static void str_addz(str_t *s, const char *z) { str_add(s, z, strlen(z)); }

static void str_addf(str_t *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void str_addf(str_t *s, const char *fmt, ...)
{
    char tmp[128];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    str_add(s, tmp, (size_t)n);
}

/* ------------------------------------------------------ the real request */

#define REAL_REQUEST                                                           \
    "request=smtpd_access_policy\n"                                            \
    "protocol_state=RCPT\n"                                                    \
    "protocol_name=ESMTP\n"                                                    \
    "client_address=127.0.0.1\n"                                               \
    "client_name=unknown\n"                                                    \
    "client_port=44638\n"                                                      \
    "reverse_client_name=unknown\n"                                            \
    "server_address=127.0.0.1\n"                                               \
    "server_port=2525\n"                                                       \
    "helo_name=vm\n"                                                           \
    "sender=sender@partner.test\n"                                             \
    "recipient=alice@example.org\n"                                            \
    "recipient_count=0\n"                                                      \
    "queue_id=\n"                                                              \
    "instance=583a.6b0a6fe8.6ec56.0\n"                                         \
    "size=0\n"                                                                 \
    "etrn_domain=\n"                                                           \
    "stress=\n"                                                                \
    "sasl_method=\n"                                                           \
    "sasl_username=\n"                                                         \
    "sasl_sender=\n"                                                           \
    "ccert_subject=\n"                                                         \
    "ccert_issuer=\n"                                                          \
    "ccert_fingerprint=\n"                                                     \
    "ccert_pubkey_fingerprint=\n"                                              \
    "encryption_protocol=\n"                                                   \
    "encryption_cipher=\n"                                                     \
    "encryption_keysize=0\n"                                                   \
    "policy_context=mx\n"                                                      \
    "\n"

#define REAL_ATTRS                                                             \
    "request", "smtpd_access_policy", "protocol_state", "RCPT",                \
    "protocol_name", "ESMTP", "client_address", "127.0.0.1",                   \
    "client_name", "unknown", "client_port", "44638",                          \
    "reverse_client_name", "unknown", "server_address", "127.0.0.1",           \
    "server_port", "2525", "helo_name", "vm",                                  \
    "sender", "sender@partner.test", "recipient", "alice@example.org",         \
    "recipient_count", "0", "queue_id", "",                                    \
    "instance", "583a.6b0a6fe8.6ec56.0", "size", "0",                          \
    "etrn_domain", "", "stress", "",                                           \
    "sasl_method", "", "sasl_username", "",                                    \
    "sasl_sender", "", "ccert_subject", "",                                    \
    "ccert_issuer", "", "ccert_fingerprint", "",                               \
    "ccert_pubkey_fingerprint", "", "encryption_protocol", "",                 \
    "encryption_cipher", "", "encryption_keysize", "0",                        \
    "policy_context", "mx", NULL

#define NAME64 "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

static const pcase_t cases[] = {
    /* Well-formed requests. */
    {"real_postfix_3_7", REAL_REQUEST, 0, {0}, ALL, {REAL_ATTRS}},
    {"minimal", "a=b\n\n", 0, {0}, ALL, {"a", "b", NULL}},
    {"empty_values", "a=\nb=\n\n", 0, {0}, ALL, {"a", "", "b", "", NULL}},
    {"value_with_equals", "a=b=c\nx==\n\n", 0, {0}, ALL, {"a", "b=c", "x", "=", NULL}},
    {"utf8_value", "name=J\xc3\xbcrgen \xe2\x98\x83\n\n", 0, {0}, ALL,
     {"name", "J\xc3\xbcrgen \xe2\x98\x83", NULL}},
    {"binary_value", "v=\x01\t\x7f\x80\xff end \n\n", 0, {0}, ALL,
     {"v", "\x01\t\x7f\x80\xff end ", NULL}},
    {"value_spaces_kept", "v=  a b  \n\n", 0, {0}, ALL, {"v", "  a b  ", NULL}},
    {"name_charset", "A-z.0_9=1\n\n", 0, {0}, ALL, {"A-z.0_9", "1", NULL}},
    {"name_64_bytes", NAME64 "=v\n\n", 0, {0}, ALL, {NAME64, "v", NULL}},
    {"names_case_sensitive", "a=1\nA=2\n\n", 0, {0}, ALL, {"a", "1", "A", "2", NULL}},
    {"same_key_not_dup", "aXbYc=1\naZbWc=2\n\n", 0, {0}, ALL,
     {"aXbYc", "1", "aZbWc", "2", NULL}},
    {"prefix_names_not_dup", "ab=1\nabc=2\na=3\n\n", 0, {0}, ALL,
     {"ab", "1", "abc", "2", "a", "3", NULL}},
    {"crlf", "a=b\r\nc=d\r\n\r\n", 0, {0}, ALL, {"a", "b", "c", "d", NULL}},
    {"crlf_empty_value", "a=\r\n\r\n", 0, {0}, ALL, {"a", "", NULL}},
    {"mixed_line_ends", "a=b\r\nc=d\n\r\n", 0, {0}, ALL, {"a", "b", "c", "d", NULL}},
    {"first_of_two", "a=b\n\nc=d\n\n", 0, {0}, 5, {"a", "b", NULL}},
    {"first_then_garbage", "a=b\n\n\0\r\xff", 8, {0}, 5, {"a", "b", NULL}},

    /* Incomplete: 0 = need more.  At EOF the caller treats pending bytes as
     * an error (a truncated request). */
    {"nothing", "", 0, {0}, 0, {NULL}},
    {"partial_name", "a", 0, {0}, 0, {NULL}},
    {"partial_line", "a=b", 0, {0}, 0, {NULL}},
    {"missing_blank_line", "a=b\n", 0, {0}, 0, {NULL}},
    {"pending_cr", "a=b\r", 0, {0}, 0, {NULL}},
    {"pending_crlf", "a=b\r\n", 0, {0}, 0, {NULL}},
    {"pending_final_cr", "a=b\n\r", 0, {0}, 0, {NULL}},
    {"lone_cr", "\r", 0, {0}, 0, {NULL}},

    /* Syntax. */
    {"missing_equals", "ab\n\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"missing_equals_2nd", "a=b\nc\n\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"missing_equals_crlf", "ab\r\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"bare_cr_in_value", "a=b\rc\n\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"bare_cr_then_more", "a=b\rx", 0, {0}, E(ESYNTAX), {NULL}},
    {"cr_cr_lf", "a=b\r\r\n\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"cr_in_name", "a\r=b\n\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"cr_cr_final", "a=b\n\r\r\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"cr_before_nul", "a=\r\0", 4, {0}, E(ESYNTAX), {NULL}},
    {"http_request", "GET / HTTP/1.0\r\n\r\n", 0, {0}, E(ESYNTAX), {NULL}},
    {"garbage_no_equals", "\xff\xfe\x01\x02garbage\n\n", 0, {0}, E(ESYNTAX), {NULL}},

    /* Names. */
    {"empty_name", "=v\n\n", 0, {0}, E(ENAME), {NULL}},
    {"empty_name_2nd", "a=1\n=\n\n", 0, {0}, E(ENAME), {NULL}},
    {"name_65_bytes", NAME64 "y=v\n\n", 0, {0}, E(ENAME), {NULL}},
    {"name_with_space", "a b=c\n\n", 0, {0}, E(ENAME), {NULL}},
    {"name_with_colon", "a:b=c\n\n", 0, {0}, E(ENAME), {NULL}},
    {"name_non_ascii", "\xc3\xa9=1\n\n", 0, {0}, E(ENAME), {NULL}},
    {"garbage_name", "\x80\x81=x\n\n", 0, {0}, E(ENAME), {NULL}},
    {"name_tab", "\ta=1\n\n", 0, {0}, E(ENAME), {NULL}},

    /* NUL bytes. */
    {"nul_in_name", "a\0b=c\n\n", 7, {0}, E(ENUL), {NULL}},
    {"nul_in_value", "a=b\0c\n\n", 7, {0}, E(ENUL), {NULL}},
    {"nul_before_newline", "a=b\0\n\n", 6, {0}, E(ENUL), {NULL}},
    {"nul_without_newline", "a=\0", 3, {0}, E(ENUL), {NULL}},
    {"nul_alone", "\0", 1, {0}, E(ENUL), {NULL}},
    {"nul_in_final_line", "a=b\n\0\n", 6, {0}, E(ENUL), {NULL}},
    {"tls_client_hello", "\x16\x03\x01\x02\x00\x01\x00", 7, {0}, E(ENUL), {NULL}},

    /* Empty requests and duplicates. */
    {"lone_lf", "\n", 0, {0}, E(EEMPTY), {NULL}},
    {"lone_crlf", "\r\n", 0, {0}, E(EEMPTY), {NULL}},
    {"empty_then_request", "\na=b\n\n", 0, {0}, E(EEMPTY), {NULL}},
    {"dup_adjacent", "a=1\na=2\n\n", 0, {0}, E(EDUP), {NULL}},
    {"dup_same_value", "a=1\na=1\n\n", 0, {0}, E(EDUP), {NULL}},
    {"dup_apart", "a=1\nb=2\nc=3\nb=4\n\n", 0, {0}, E(EDUP), {NULL}},
    {"dup_real_name", "client_address=1\nclient_name=x\nclient_address=2\n", 0, {0},
     E(EDUP), {NULL}},
    {"dup_before_long_line", "a=1\na=2\nxxxxxxxxxxxxxxxxxxxx", 0, LIM(8, 0, 0), E(EDUP), {NULL}},

    /* Line length, with max_line 8. */
    {"line_at_limit", "abc=1234\n\n", 0, LIM(8, 0, 0), ALL, {"abc", "1234", NULL}},
    {"line_at_limit_crlf", "abc=1234\r\n\r\n", 0, LIM(8, 0, 0), ALL, {"abc", "1234", NULL}},
    {"line_over_limit", "abc=12345\n\n", 0, LIM(8, 0, 0), E(ELINE), {NULL}},
    {"line_over_limit_crlf", "abc=12345\r\n\r\n", 0, LIM(8, 0, 0), E(ELINE), {NULL}},
    {"line_over_no_newline", "abc=12345", 0, LIM(8, 0, 0), E(ELINE), {NULL}},
    {"line_at_limit_pending_cr", "abc=1234\r", 0, LIM(8, 0, 0), 0, {NULL}},
    {"line_at_limit_bare_cr", "abc=1234\rx", 0, LIM(8, 0, 0), E(ESYNTAX), {NULL}},
    {"line_at_limit_bare_cr_lf", "abc=1234\rx\n\n", 0, LIM(8, 0, 0), E(ESYNTAX), {NULL}},
    {"line_at_limit_cr_cr_lf", "abc=1234\r\r\n\n", 0, LIM(8, 0, 0), E(ESYNTAX), {NULL}},
    {"line_over_then_cr", "abc=12345\rx\n\n", 0, LIM(8, 0, 0), E(ELINE), {NULL}},
    {"line_over_then_nul", "abc=12345\0", 10, LIM(8, 0, 0), E(ELINE), {NULL}},
    {"line_at_limit_nul", "abc=1234\0", 9, LIM(8, 0, 0), E(ENUL), {NULL}},
    {"no_equals_over_limit", "abcdefghij", 0, LIM(8, 0, 0), E(ELINE), {NULL}},
    {"second_line_over", "a=1\nabc=12345", 0, LIM(8, 0, 0), E(ELINE), {NULL}},
    {"line_limit_1", "a=\n\n", 0, LIM(1, 0, 0), E(ELINE), {NULL}},
    {"line_limit_2", "a=\n\n", 0, LIM(2, 0, 0), ALL, {"a", "", NULL}},

    /* Attribute count, with max_attrs 2. */
    {"attrs_at_limit", "a=\nb=\n\n", 0, LIM(0, 2, 0), ALL, {"a", "", "b", "", NULL}},
    {"attrs_over_limit", "a=\nb=\nc=\n\n", 0, LIM(0, 2, 0), E(EATTRS), {NULL}},
    {"attrs_over_limit_no_end", "a=\nb=\nc=\n", 0, LIM(0, 2, 0), E(EATTRS), {NULL}},

    /* Request size, with max_request 10. */
    {"request_at_limit", "a=1\nb=22\n\n", 0, LIM(0, 0, 10), ALL, {"a", "1", "b", "22", NULL}},
    {"request_at_limit_need_more", "a=1\nb=22\n", 0, LIM(0, 0, 10), 0, {NULL}},
    {"request_over_limit", "a=1\nb=223\n\n", 0, LIM(0, 0, 10), E(ESIZE), {NULL}},
    {"request_over_by_crlf", "a=1\nb=22\n\r\n", 0, LIM(0, 0, 10), E(ESIZE), {NULL}},
    {"request_over_no_newline", "a=1\nb=22\nxy", 0, LIM(0, 0, 10), E(ESIZE), {NULL}},
    {"request_cr_at_limit_lf", "a=1234567\r\n\n", 0, LIM(0, 0, 10), E(ESIZE), {NULL}},
    {"request_cr_at_limit_bare", "a=1234567\rx", 0, LIM(0, 0, 10), E(ESYNTAX), {NULL}},
    {"request_cr_at_both_limits_lf", "a=1234567\r\n\n", 0, LIM(9, 0, 10), E(ESIZE), {NULL}},
    {"request_cr_at_both_limits_bare", "a=1234567\rx", 0, LIM(9, 0, 10), E(ESYNTAX), {NULL}},
    {"request_cr_at_both_limits_wait", "a=1234567\r", 0, LIM(9, 0, 10), 0, {NULL}},
    {"request_then_next", "a=1\nb=22\n\nc=3\n\n", 0, LIM(0, 0, 10), 10, {"a", "1", "b", "22", NULL}},
    {"request_tiny_limit", "a=\n\n", 0, LIM(0, 0, 3), E(ESIZE), {NULL}},
};

CTEST(table_whole_bytewise_and_splits)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* The real request and a few table cases, with "\r\n" line ends. */
CTEST(crlf_versions)
{
    static const char *const names[] = {"real_postfix_3_7", "empty_values", "value_with_equals",
                                        "names_case_sensitive", "dup_apart", "missing_equals_2nd"};
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        const pcase_t *src = NULL;
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            if (strcmp(cases[i].name, names[k]) == 0)
                src = &cases[i];
        CHECK(src != NULL);
        if (src == NULL)
            continue;
        str_t s = {0};
        for (const char *q = src->in; *q; q++)
            str_add(&s, *q == '\n' ? "\r\n" : q, *q == '\n' ? 2 : 1);
        str_add(&s, "", 1);
        pcase_t c = *src;
        c.in = s.p;
        c.in_len = 0;
        run_case(&c);
        free(s.p);
    }
}

CTEST(real_request_attr_pointers_into_buffer)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    const char *in = REAL_REQUEST;
    size_t len = strlen(in);
    CHECK_INT(op_policy_parse(&p, in, len), len);
    CHECK_INT(op_policy_nattrs(&p), 29);
    const op_policy_attr_t *a = op_policy_attrs(&p);
    CHECK(a[0].name == in);
    CHECK(a[0].value == in + 8);
    CHECK_MEM(a[28].name, a[28].name_len, "policy_context");
    CHECK_MEM(a[28].value, a[28].value_len, "mx");
    CHECK(a[28].value + a[28].value_len == in + len - 2);
    op_policy_parser_free(&p);
}

/* ----------------------------------------------------------- pipelining */

/* Parses every request in in[0..len), as a connection would with all bytes
 * at once (one parser throughout), or with a fresh parser per request (an
 * empty name cache: the reference for the cache, which must change no
 * result); returns a description of the results. */
static char *describe_requests(const char *in, size_t len, const op_policy_limits_t *lim, int fresh)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, lim);
    str_t out = {0};
    size_t off = 0;
    for (;;) {
        ssize_t r = op_policy_parse(&p, in + off, len - off);
        if (r < 0) {
            str_addf(&out, "E%zd\n", -r);
            break;
        }
        if (r == 0) {
            str_addf(&out, "P%zu\n", len - off);
            break;
        }
        str_addf(&out, "R%zd\n", r);
        const op_policy_attr_t *a = op_policy_attrs(&p);
        for (size_t i = 0; i < op_policy_nattrs(&p); i++) {
            str_add(&out, a[i].name, a[i].name_len);
            str_addz(&out, "=");
            str_add(&out, a[i].value, a[i].value_len);
            str_addz(&out, "\n");
        }
        off += (size_t)r;
        if (fresh) {
            op_policy_parser_free(&p);
            op_policy_parser_init(&p, lim);
        }
    }
    str_add(&out, "", 1);
    op_policy_parser_free(&p);
    return out.p;
}

static char *describe_all(const char *in, size_t len, const op_policy_limits_t *lim)
{
    return describe_requests(in, len, lim, 0);
}

CTEST(two_requests_in_one_buffer)
{
    char *d = describe_all("a=1\nb=2\n\nc=3\n\n", 14, NULL);
    CHECK_STR(d, "R9\na=1\nb=2\nR5\nc=3\nP0\n");
    free(d);
}

CTEST(three_requests_same_names)
{
    /* The duplicate check is per request. */
    const char *in = REAL_REQUEST REAL_REQUEST "request=x\r\n\r\n";
    char *d = describe_all(in, strlen(in), NULL);
    char *one = describe_all(REAL_REQUEST, strlen(REAL_REQUEST), NULL);
    str_t want = {0};
    str_add(&want, one, strlen(one) - 3); /* without "P0\n" */
    str_add(&want, one, strlen(one) - 3);
    str_addz(&want, "R13\nrequest=x\nP0\n");
    str_add(&want, "", 1);
    CHECK_STR(d, want.p);
    free(want.p);
    free(one);
    free(d);
}

CTEST(pipeline_then_partial_then_error)
{
    char *d = describe_all("a=1\n\nb=2\n\nc=", 12, NULL);
    CHECK_STR(d, "R5\na=1\nR5\nb=2\nP2\n");
    free(d);
    d = describe_all("a=1\n\nb=2\n\n\n", 11, NULL);
    CHECK_STR(d, "R5\na=1\nR5\nb=2\nE" "8\n");
    free(d);
}

/* A connection: bytes arrive in chunks (sizes from next_chunk), are appended
 * to a buffer that is reallocated (and so moves under ASan), and every
 * complete request is consumed.  Returns the same description as
 * describe_all. */
typedef size_t (*chunk_fn)(void *ctx);

static char *describe_fed(const char *in, size_t len, const op_policy_limits_t *lim,
                          chunk_fn next_chunk, void *ctx)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, lim);
    str_t out = {0};
    char *cb = NULL;
    size_t clen = 0, fed = 0;
    int done = 0;
    while (fed < len && !done) {
        size_t n = next_chunk(ctx);
        if (n == 0 || n > len - fed)
            n = len - fed;
        char *nb = op_malloc(clen + n); /* always a new address */
        if (clen)
            memcpy(nb, cb, clen);
        memcpy(nb + clen, in + fed, n);
        free(cb);
        cb = nb;
        clen += n;
        fed += n;
        for (;;) {
            ssize_t r = op_policy_parse(&p, cb, clen);
            if (r < 0) {
                str_addf(&out, "E%zd\n", -r);
                done = 1;
                break;
            }
            if (r == 0)
                break;
            str_addf(&out, "R%zd\n", r);
            const op_policy_attr_t *a = op_policy_attrs(&p);
            for (size_t i = 0; i < op_policy_nattrs(&p); i++) {
                str_add(&out, a[i].name, a[i].name_len);
                str_addz(&out, "=");
                str_add(&out, a[i].value, a[i].value_len);
                str_addz(&out, "\n");
            }
            memmove(cb, cb + r, clen - (size_t)r);
            clen -= (size_t)r;
        }
    }
    if (!done)
        str_addf(&out, "P%zu\n", clen);
    str_add(&out, "", 1);
    free(cb);
    op_policy_parser_free(&p);
    return out.p;
}

static size_t chunk_one(void *ctx)
{
    (void)ctx;
    return 1;
}

CTEST(three_requests_byte_by_byte)
{
    const char *in = "a=1\nb=2\n\nc=3\r\n\r\nd=\n\n";
    size_t len = strlen(in);
    char *whole = describe_all(in, len, NULL);
    char *fed = describe_fed(in, len, NULL, chunk_one, NULL);
    CHECK_STR(whole, "R9\na=1\nb=2\nR7\nc=3\nR4\nd=\nP0\n");
    CHECK_STR(fed, whole);
    free(whole);
    free(fed);
}

/* ------------------------------------------------------------ name cache */

static char *describe_cold(const char *in, size_t len, const op_policy_limits_t *lim)
{
    return describe_requests(in, len, lim, 1);
}

/* in, parsed on one connection whole and byte by byte, gives want, and the
 * same as with a fresh parser per request. */
static void check_cached(const char *in, const op_policy_limits_t *lim, const char *want)
{
    size_t len = strlen(in);
    char *warm = describe_all(in, len, lim);
    char *fed = describe_fed(in, len, lim, chunk_one, NULL);
    char *cold = describe_cold(in, len, lim);
    CHECK_STR(warm, want);
    CHECK_STR(fed, want);
    CHECK_STR(cold, want);
    free(warm);
    free(fed);
    free(cold);
}

CTEST(name_cache_order_changes)
{
    check_cached("a=1\nb=2\nc=3\n\n"
                 "b=4\na=5\nc=6\n\n"
                 "b=7\na=8\nc=9\n\n"
                 "a=1\nb=2\n\n"
                 "a=1\nb=2\nc=3\nd=4\n\n",
                 NULL,
                 "R13\na=1\nb=2\nc=3\n"
                 "R13\nb=4\na=5\nc=6\n"
                 "R13\nb=7\na=8\nc=9\n"
                 "R9\na=1\nb=2\n"
                 "R17\na=1\nb=2\nc=3\nd=4\nP0\n");
}

CTEST(name_cache_prefixes)
{
    /* A name that is a prefix of the cached one, one the cached name is a
     * prefix of, one that differs in its last byte, and lines as short as
     * the cached name. */
    check_cached("client_address=1\nsender=2\n\n"
                 "client=3\nsender=4\n\n"
                 "client_address_x=5\nsender=6\n\n"
                 "client_address=7\nsendes=8\n\n"
                 "client_address=9\nsender\n\n",
                 NULL,
                 "R27\nclient_address=1\nsender=2\n"
                 "R19\nclient=3\nsender=4\n"
                 "R29\nclient_address_x=5\nsender=6\n"
                 "R27\nclient_address=7\nsendes=8\n"
                 "E5\n");
    check_cached("ab=1\n\nab!=2\n\n", NULL, "R6\nab=1\nE6\n");
    /* Names that differ in one byte only, at each place a compare of words
     * could miss (the first, a middle or the last word of a long name, the
     * middle of a short one): the line is another name, and with a byte
     * that is no name byte there, a bad one. */
    check_cached("abcdefghijklmnopqrst=1\nabcde=2\n\n"
                 "abcdefghiXklmnopqrst=3\nabXde=4\n\n"
                 "Xbcdefghijklmnopqrst=5\nabcdX=6\n\n"
                 "abcdefghijklmnopqrsX=7\nXbcde=8\n\n"
                 "abcdefghijklmnopqrst=9\nabcde=0\n\n",
                 NULL,
                 "R32\nabcdefghijklmnopqrst=1\nabcde=2\n"
                 "R32\nabcdefghiXklmnopqrst=3\nabXde=4\n"
                 "R32\nXbcdefghijklmnopqrst=5\nabcdX=6\n"
                 "R32\nabcdefghijklmnopqrsX=7\nXbcde=8\n"
                 "R32\nabcdefghijklmnopqrst=9\nabcde=0\nP0\n");
    static const char *const bad[] = {
        "!bcdefghijklmnopqrst=1\nabcde=2\n\n", "abcdefghi!klmnopqrst=1\nabcde=2\n\n",
        "abcdefghijklmnopqrs!=1\nabcde=2\n\n", "abcdefghijklmnopqrst=1\n!bcde=2\n\n",
        "abcdefghijklmnopqrst=1\nab!de=2\n\n", "abcdefghijklmnopqrst=1\nabcd!=2\n\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        str_t in = {0};
        str_addz(&in, "abcdefghijklmnopqrst=1\nabcde=2\n\n");
        str_addz(&in, bad[i]);
        str_add(&in, "", 1);
        check_cached(in.p, NULL, "R32\nabcdefghijklmnopqrst=1\nabcde=2\nE6\n");
        free(in.p);
    }
    check_cached("abcdefghijklmnopqrst=1\n\nabcdefghiXklmnopqrst=1\nabcdefghijklmnopqrst=2\nabcdefghiXklmnopqrst=3\n\n",
                 NULL, "R24\nabcdefghijklmnopqrst=1\nE7\n");
    check_cached("ab=1\n\nab\n\n", NULL, "R6\nab=1\nE5\n");
    check_cached("ab=1\n\na\n\n", NULL, "R6\nab=1\nE5\n");
    /* "=" inside the value: the name is what comes before the first one. */
    check_cached("a=b=c\nb==\n\na=b=c\nb==\n\n", NULL, "R11\na=b=c\nb==\nR11\na=b=c\nb==\nP0\n");
}

CTEST(name_cache_empty_values)
{
    check_cached("a=\nb=\n\na=\nb=\n\na=1\nb=\n\na=\n\n", NULL,
                 "R7\na=\nb=\nR7\na=\nb=\nR8\na=1\nb=\nR4\na=\nP0\n");
    check_cached("a=1\r\n\r\na=\r\n\r\n", NULL, "R7\na=1\nR6\na=\nP0\n");
}

CTEST(name_cache_duplicates)
{
    /* A duplicate of a name that matched the cache: at the cache's place,
     * after the cache's end, and after a line that left the cache. */
    check_cached("a=1\nb=2\n\na=1\na=2\n\n", NULL, "R9\na=1\nb=2\nE7\n");
    check_cached("a=1\nb=2\n\na=1\nb=2\nb=3\n\n", NULL, "R9\na=1\nb=2\nE7\n");
    check_cached("a=1\nb=2\nc=3\n\na=1\nb=2\na=3\n\n", NULL, "R13\na=1\nb=2\nc=3\nE7\n");
    check_cached("a=1\nb=2\nc=3\n\nx=1\nb=2\nc=3\nx=4\n\n", NULL, "R13\na=1\nb=2\nc=3\nE7\n");
    /* The request after a refused one is never parsed: errors are sticky. */
    check_cached("a=1\n\nb=1\nb=2\n\nb=1\n\n", NULL, "R5\na=1\nE7\n");
}

CTEST(name_cache_overflow)
{
    /* 40 names of 60 bytes: more than the cache holds.  The same request
     * twice, then with a duplicate of the first name as the last line. */
    str_t in = {0}, want = {0};
    for (int rep = 0; rep < 3; rep++) {
        str_t req = {0};
        for (int i = 0; i < 40; i++)
            str_addf(&req, "%059d%c=%d\n", i, 'n', rep);
        if (rep == 2)
            str_addf(&req, "%059d%c=dup\n", 0, 'n');
        str_addz(&req, "\n");
        str_add(&in, req.p, req.len);
        if (rep < 2) {
            str_addf(&want, "R%zu\n", req.len);
            for (int i = 0; i < 40; i++)
                str_addf(&want, "%059d%c=%d\n", i, 'n', rep);
        }
        free(req.p);
    }
    str_addf(&want, "E%d\n", OP_POLICY_EDUP);
    str_add(&in, "", 1);
    str_add(&want, "", 1);
    check_cached(in.p, NULL, want.p);
    free(in.p);
    free(want.p);
}

CTEST(name_cache_limits)
{
    /* The attribute limit still counts the cached names. */
    op_policy_limits_t lim = LIM(0, 2, 0);
    check_cached("a=1\nb=2\n\na=1\nb=2\n\na=1\nb=2\nc=3\n\n", &lim,
                 "R9\na=1\nb=2\nR9\na=1\nb=2\nE2\n");
}

/* ------------------------------------------------------ big and hostile */

/* A megabyte line without newline, starting at line_off after prefix: the
 * error comes after at most max_line + 2 bytes of it (in fact as soon as
 * there are max_line + 1 and the last is not a CR). */
static void huge_line(const op_policy_limits_t *lim, size_t max_line, const char *prefix,
                      size_t line_off)
{
    size_t big = 1 << 20;
    char *buf = op_malloc(big);
    memset(buf, 'v', big);
    memcpy(buf, prefix, strlen(prefix));

    op_policy_parser_t p;
    op_policy_parser_init(&p, lim);
    ssize_t r = 0;
    size_t k;
    for (k = 1; k <= big && r == 0; k++)
        r = op_policy_parse(&p, buf, k);
    k--;
    CHECK_INT(r, E(ELINE));
    CHECK(k - line_off <= max_line + 2);
    CHECK_INT(k, line_off + max_line + 1);
    op_policy_parser_free(&p);

    op_policy_parser_init(&p, lim);
    CHECK_INT(op_policy_parse(&p, buf, big), E(ELINE));
    op_policy_parser_free(&p);
    free(buf);
}

CTEST(huge_line_without_newline)
{
    huge_line(NULL, OP_POLICY_MAX_LINE_DEFAULT, "name=", 0);
    huge_line(NULL, OP_POLICY_MAX_LINE_DEFAULT, "", 0);
    huge_line(NULL, OP_POLICY_MAX_LINE_DEFAULT, "a=1\n", 4);
    op_policy_limits_t lim = LIM(100, 0, 0);
    huge_line(&lim, 100, "name=", 0);
    op_policy_limits_t lim2 = LIM(1 << 19, 0, 1 << 22);
    huge_line(&lim2, 1 << 19, "name=", 0);
}

CTEST(huge_line_with_crs_at_limit)
{
    /* max_line bytes then "\r": still undecided; then "v": a bare CR. */
    op_policy_limits_t lim = LIM(16, 0, 0);
    op_policy_parser_t p;
    op_policy_parser_init(&p, &lim);
    char buf[64];
    memset(buf, 'v', sizeof(buf));
    memcpy(buf, "name=", 5);
    buf[16] = '\r';
    for (size_t k = 1; k <= 17; k++)
        CHECK_INT(op_policy_parse(&p, buf, k), 0);
    CHECK_INT(p.scanned, 16);
    CHECK_INT(op_policy_parse(&p, buf, 18), E(ESYNTAX));
    op_policy_parser_free(&p);
}

static char *many_attrs(size_t n, size_t *lenp)
{
    str_t s = {0};
    for (size_t i = 0; i < n; i++)
        str_addf(&s, "attr%zu=%zu\n", i, i);
    str_addz(&s, "\n");
    *lenp = s.len;
    return s.p;
}

CTEST(hundred_thousand_attributes)
{
    size_t len;
    char *in = many_attrs(100000, &len);
    op_policy_parser_t p;

    op_policy_parser_init(&p, NULL);
    CHECK_INT(op_policy_parse(&p, in, len), E(EATTRS));
    op_policy_parser_free(&p);

    /* Trickling in: the error comes at the 129th line. */
    op_policy_parser_init(&p, NULL);
    ssize_t r = 0;
    size_t k;
    for (k = 1; k <= len && r == 0; k++)
        r = op_policy_parse(&p, in, k);
    k--;
    CHECK_INT(r, E(EATTRS));
    size_t l128;
    char *first = many_attrs(128, &l128);
    CHECK_INT(k, l128 + strlen("attr128=128\n") - 1); /* at the 129th "\n" */
    free(first);
    op_policy_parser_free(&p);

    /* Even with the size limit out of the way. */
    op_policy_limits_t lim = LIM(0, 0, 1 << 24);
    op_policy_parser_init(&p, &lim);
    CHECK_INT(op_policy_parse(&p, in, len), E(EATTRS));
    op_policy_parser_free(&p);
    free(in);
}

CTEST(max_attrs_exact)
{
    size_t len;
    char *in = many_attrs(128, &len);
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    CHECK_INT(op_policy_parse(&p, in, len), len);
    CHECK_INT(op_policy_nattrs(&p), 128);
    CHECK_MEM(op_policy_attrs(&p)[127].name, op_policy_attrs(&p)[127].name_len, "attr127");
    op_policy_parser_free(&p);
    free(in);
}

CTEST(request_over_max_request)
{
    /* 17 lines of 4000 bytes: each line is fine, the request is not. */
    str_t s = {0};
    char val[4000];
    memset(val, 'x', sizeof(val));
    for (int i = 0; i < 17; i++) {
        str_addf(&s, "n%02d=", i);
        str_add(&s, val, sizeof(val) - 4);
        str_addz(&s, "\n");
    }
    str_addz(&s, "\n");
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    CHECK_INT(op_policy_parse(&p, s.p, s.len), E(ESIZE));
    op_policy_parser_free(&p);

    op_policy_parser_init(&p, NULL);
    ssize_t r = 0;
    size_t k;
    for (k = 1; k <= s.len && r == 0; k++)
        r = op_policy_parse(&p, s.p, k);
    k--;
    CHECK_INT(r, E(ESIZE));
    CHECK_INT(k, OP_POLICY_MAX_REQUEST_DEFAULT + 1);
    op_policy_parser_free(&p);
    free(s.p);
}

/* -------------------------------------------------------- parser state */

CTEST(missing_blank_line_then_eof)
{
    /* The parser only says "need more"; at EOF the caller sees pending
     * bytes and treats the request as truncated. */
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    CHECK_INT(op_policy_parse(&p, "a=b\nc=d\n", 8), 0);
    CHECK_INT(p.scanned, 8);
    CHECK_INT(p.line_start, 8);
    CHECK_INT(op_policy_parse(&p, "a=b\nc=d\n", 8), 0);
    CHECK_INT(op_policy_parse(&p, "a=b\nc=d\n\n", 9), 9);
    op_policy_parser_free(&p);
}

CTEST(resumes_where_it_stopped)
{
    /* Feeding a long value byte by byte examines each byte once. */
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    char buf[3002];
    memset(buf, 'v', sizeof(buf));
    memcpy(buf, "a=", 2);
    for (size_t k = 1; k <= sizeof(buf); k++) {
        CHECK_INT(op_policy_parse(&p, buf, k), 0);
        CHECK_INT(p.scanned, k);
        CHECK_INT(p.line_start, 0);
    }
    op_policy_parser_free(&p);
}

CTEST(errors_are_sticky)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    CHECK_INT(op_policy_parse(&p, "a=1\na=2\n", 8), E(EDUP));
    CHECK_INT(op_policy_parse(&p, "a=1\na=2\n", 8), E(EDUP));
    CHECK_INT(op_policy_parse(&p, "b=1\n\n", 5), E(EDUP));
    op_policy_parser_free(&p);
}

CTEST(reuse_after_request)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    CHECK_INT(op_policy_parse(&p, "a=1\nb=2\n\n", 9), 9);
    CHECK_INT(op_policy_nattrs(&p), 2);
    CHECK_INT(op_policy_parse(&p, "b=", 2), 0);
    CHECK_INT(op_policy_nattrs(&p), 0);
    CHECK_INT(op_policy_parse(&p, "b=3\n\n", 5), 5);
    CHECK_INT(op_policy_nattrs(&p), 1);
    CHECK_MEM(op_policy_attrs(&p)[0].value, op_policy_attrs(&p)[0].value_len, "3");
    op_policy_parser_free(&p);
}

CTEST(limits_defaults_and_clamping)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, NULL);
    CHECK_INT(p.limits.max_line, OP_POLICY_MAX_LINE_DEFAULT);
    CHECK_INT(p.limits.max_attrs, OP_POLICY_MAX_ATTRS_DEFAULT);
    CHECK_INT(p.limits.max_request, OP_POLICY_MAX_REQUEST_DEFAULT);
    CHECK_INT(p.nattrs, 0);
    op_policy_parser_free(&p);
    CHECK(p.attrs == NULL);

    op_policy_limits_t zero = LIM(0, 0, 0);
    op_policy_parser_init(&p, &zero);
    CHECK_INT(p.limits.max_line, OP_POLICY_MAX_LINE_DEFAULT);
    op_policy_parser_free(&p);

    op_policy_limits_t huge = LIM((size_t)-1, (size_t)-1, 300);
    op_policy_parser_init(&p, &huge);
    CHECK_INT(p.limits.max_line, 300);
    CHECK_INT(p.limits.max_attrs, 100);
    op_policy_parser_free(&p);

    op_policy_limits_t all_huge = LIM((size_t)-1, (size_t)-1, (size_t)-1);
    op_policy_parser_init(&p, &all_huge);
    CHECK(p.limits.max_request <= (size_t)SSIZE_MAX);
    CHECK_INT(p.limits.max_attrs, 4096);
    CHECK_INT(op_policy_parse(&p, "a=b\n\n", 5), 5);
    op_policy_parser_free(&p);
}

CTEST(strerror_texts)
{
    CHECK_STR(op_policy_strerror(E(ELINE)), "line longer than the limit");
    CHECK_STR(op_policy_strerror(E(ENUL)), "NUL byte in request");
    CHECK_STR(op_policy_strerror(OP_POLICY_ENUL), "NUL byte in request");
    CHECK_STR(op_policy_strerror(-99), "unknown policy protocol error");
    CHECK_STR(op_policy_strerror(0), "unknown policy protocol error");
    for (int i = OP_POLICY_ELINE; i <= OP_POLICY_EEMPTY; i++) {
        const char *t = op_policy_strerror(-i);
        CHECK(t != NULL && *t != '\0');
        CHECK(strcmp(t, "unknown policy protocol error") != 0);
        for (int j = OP_POLICY_ELINE; j < i; j++)
            CHECK(strcmp(t, op_policy_strerror(-j)) != 0);
    }
}

/* ---------------------------------------------------------------- encode */

CTEST(encode_simple)
{
    char out[64];
    size_t n = op_policy_encode(out, sizeof(out), "DUNNO", 5);
    CHECK_MEM(out, n, "action=DUNNO\n\n");
    n = op_policy_encode(out, sizeof(out), "", 0);
    CHECK_MEM(out, n, "action=\n\n");
    n = op_policy_encode(out, sizeof(out), NULL, 0);
    CHECK_MEM(out, n, "action=\n\n");
    n = op_policy_encode(out, sizeof(out), "450 4.7.1 J\xc3\xbcrgen", 17);
    CHECK_MEM(out, n, "action=450 4.7.1 J\xc3\xbcrgen\n\n");
}

CTEST(encode_sanitises)
{
    char out[64];
    const char act[] = "REJECT a\r\nb\0c\td\x7f" "e\x1f\x01\x80";
    size_t n = op_policy_encode(out, sizeof(out), act, sizeof(act) - 1);
    CHECK_MEM(out, n, "action=REJECT a  b c d e  \x80\n\n");
    n = op_policy_encode(out, sizeof(out), "\n\n", 2);
    CHECK_MEM(out, n, "action=  \n\n");
}

CTEST(encode_truncates)
{
    char act[5000];
    memset(act, 'x', sizeof(act));
    act[OP_POLICY_MAX_ACTION] = '\n'; /* beyond the cut: never seen */
    char out[6000];
    size_t n = op_policy_encode(out, sizeof(out), act, sizeof(act));
    CHECK_INT(n, 7 + OP_POLICY_MAX_ACTION + 2);
    CHECK(memcmp(out, "action=", 7) == 0);
    CHECK(memchr(out, '\n', n - 2) == NULL);
    CHECK(memcmp(out + n - 2, "\n\n", 2) == 0);
    /* Exactly at the limit: not cut. */
    n = op_policy_encode(out, sizeof(out), act, OP_POLICY_MAX_ACTION);
    CHECK_INT(n, 7 + OP_POLICY_MAX_ACTION + 2);
}

CTEST(encode_small_cap)
{
    char out[32];
    memset(out, '#', sizeof(out));
    CHECK_INT(op_policy_encode(out, 13, "DUNNO", 5), 0);
    CHECK_INT(op_policy_encode(out, 0, "DUNNO", 5), 0);
    CHECK_INT(op_policy_encode(NULL, 0, "DUNNO", 5), 0);
    CHECK_INT(out[0], '#'); /* nothing written */
    CHECK_INT(op_policy_encode(out, 14, "DUNNO", 5), 14);
    CHECK_MEM(out, 14, "action=DUNNO\n\n");
    char big[2000];
    char act[1500];
    memset(act, 'a', sizeof(act));
    CHECK_INT(op_policy_encode(big, 1008, act, sizeof(act)), 0);
    CHECK_INT(op_policy_encode(big, 1009, act, sizeof(act)), 1009);
}

/* --------------------------------------------------- property tests */

static uint64_t rng_state;

static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545F4914F6CDD1DULL;
}

static size_t rnd_below(size_t n) { return (size_t)(rnd() % n); }

static size_t chunk_random(void *ctx)
{
    size_t max = *(size_t *)ctx;
    return 1 + rnd_below(max);
}

static const char name_chars[] =
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-";

/* Appends a valid request to in and what describe_* says of it to want. */
static void gen_request(str_t *in, str_t *want)
{
    size_t n = 1 + rnd_below(40);
    str_t body = {0}, attrs = {0};
    for (size_t i = 0; i < n; i++) {
        str_t line = {0};
        size_t nl = 1 + rnd_below(12);
        for (size_t j = 0; j < nl; j++)
            str_add(&line, &name_chars[rnd_below(sizeof(name_chars) - 1)], 1);
        str_addf(&line, "_%zu=", i); /* unique: the last '_' splits */
        size_t vl = rnd_below(4) == 0 ? 0 : rnd_below(60);
        for (size_t j = 0; j < vl; j++) {
            unsigned char c;
            do
                c = (unsigned char)(rnd_below(3) ? 0x20 + rnd_below(0x5f) : 1 + rnd_below(255));
            while (c == '\r' || c == '\n');
            str_add(&line, &c, 1);
        }
        str_add(&body, line.p, line.len);
        str_addz(&body, rnd_below(3) == 0 ? "\r\n" : "\n");
        str_add(&attrs, line.p, line.len);
        str_addz(&attrs, "\n");
        free(line.p);
    }
    str_addz(&body, rnd_below(3) == 0 ? "\r\n" : "\n");
    str_add(in, body.p, body.len);
    str_addf(want, "R%zu\n", body.len);
    str_add(want, attrs.p, attrs.len);
    free(body.p);
    free(attrs.p);
}

CTEST(property_random_chunks_same_attributes)
{
    rng_state = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 300 && !ctest_failed_here; iter++) {
        str_t in = {0}, want = {0};
        size_t nreq = 1 + rnd_below(4);
        for (size_t i = 0; i < nreq; i++)
            gen_request(&in, &want);
        str_addz(&want, "P0\n");
        str_add(&want, "", 1);

        char *whole = describe_all(in.p, in.len, NULL);
        size_t max_chunk = 1 + rnd_below(rnd_below(2) ? 8 : 200);
        char *fed = describe_fed(in.p, in.len, NULL, chunk_random, &max_chunk);
        if (strcmp(whole, want.p) != 0 || strcmp(fed, want.p) != 0)
            failf("iteration %d (chunks up to %zu): whole/fed/want differ:\n%s\n--\n%s\n--\n%s",
                  iter, max_chunk, whole, fed, want.p);
        free(whole);
        free(fed);
        free(in.p);
        free(want.p);
    }
}

/* Damaged streams, small limits: whatever the result (requests, then an
 * error or pending bytes), it does not depend on how the bytes arrive. */
CTEST(property_damaged_streams_chunk_independent)
{
    static const char poison[] = {'\0', '\r', '\n', '=', ' ', '\xff', 'a'};
    rng_state = 0x243f6a8885a308d3ULL;
    for (int iter = 0; iter < 300 && !ctest_failed_here; iter++) {
        str_t in = {0}, want = {0};
        size_t nreq = 1 + rnd_below(3);
        for (size_t i = 0; i < nreq; i++)
            gen_request(&in, &want);
        size_t nmut = rnd_below(4);
        for (size_t m = 0; m < nmut && in.len > 0; m++) {
            size_t at = rnd_below(in.len);
            if (rnd_below(2))
                in.p[at] = poison[rnd_below(sizeof(poison))];
            else
                in.p[at] = (char)rnd_below(256);
        }
        op_policy_limits_t lim = {0};
        if (rnd_below(2)) {
            lim.max_line = 1 + rnd_below(80);
            lim.max_attrs = 1 + rnd_below(30);
            lim.max_request = 1 + rnd_below(800);
        }
        char *whole = describe_all(in.p, in.len, &lim);
        size_t max_chunk = 1 + rnd_below(16);
        char *fed = describe_fed(in.p, in.len, &lim, chunk_random, &max_chunk);
        char *bytes = describe_fed(in.p, in.len, &lim, chunk_one, NULL);
        if (strcmp(whole, fed) != 0 || strcmp(whole, bytes) != 0)
            failf("iteration %d: whole/chunked/bytewise differ:\n%s\n--\n%s\n--\n%s", iter,
                  whole, fed, bytes);
        free(whole);
        free(fed);
        free(bytes);
        free(in.p);
        free(want.p);
    }
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
