/* libFuzzer target for the policy protocol codec (engine/proto/proto_policy.c).
 *
 * Input: byte 0 chooses how the rest arrives (low 5 bits: chunk size of the
 * second feeding, 0 = byte by byte) and which small limits apply (high 3
 * bits); bytes 1.. are the stream.  The stream is fed twice, as a connection
 * would: all at once, then in chunks, each call on a fresh heap copy of exactly the bytes received so
 * far (ASan catches reads past len and pointers kept across calls).  Checks:
 *   - a request length is within the bytes passed and the limits, and the
 *     request ends with "\n";
 *   - every attribute lies inside the request, has a valid unique name, a
 *     "=" after it, a value without NUL, CR or LF, and fits max_line;
 *   - an error code is a known one;
 *   - both feedings give the same requests, attributes and final outcome,
 *     and so does a third, all at once with a fresh parser per request
 *     (the parser's name cache, kept from one request to the next, must
 *     change no result);
 *   - op_policy_encode of the stream (as an action) gives "action=...\n\n"
 *     with no other control byte, cut at OP_POLICY_MAX_ACTION, and 0 for a
 *     buffer one byte too small.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Iengine spec/fuzz/fuzz_proto_policy.c engine/proto/proto_policy.c \
 *       engine/core/mem.c engine/core/log.c engine/core/log_format.c -o build/fuzz_proto_policy
 *   build/fuzz_proto_policy -max_total_time=60 spec/fuzz/corpus/policy */
#include "proto/proto_policy.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                           \
        }                                                                      \
    } while (0)

static const op_policy_limits_t limit_sets[8] = {
    {128, 32, 1024}, /* the real request fits */
    {0, 0, 0},       /* defaults */
    {1, 1, 3},       {8, 2, 10}, {16, 4, 64}, {64, 8, 200}, {300, 64, 300}, {4, 100, 4096},
};

/* What one feeding saw: per request its length, then per attribute the
 * offsets of name and value in the request and their lengths. */
typedef struct {
    size_t *v;
    size_t n, cap;
    ssize_t last; /* the final error, or 0 */
    size_t pending;
} trace_t;

static void trace_add(trace_t *t, size_t x)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 256;
        t->v = realloc(t->v, t->cap * sizeof(size_t));
        REQUIRE(t->v != NULL);
    }
    t->v[t->n++] = x;
}

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '-';
}

static void check_request(const op_policy_parser_t *p, const char *buf, size_t len, ssize_t r,
                          trace_t *t)
{
    const op_policy_limits_t *l = &p->limits;
    REQUIRE((size_t)r <= len);
    REQUIRE((size_t)r <= l->max_request);
    REQUIRE(buf[r - 1] == '\n');
    size_t n = op_policy_nattrs(p);
    const op_policy_attr_t *a = op_policy_attrs(p);
    REQUIRE(n >= 1 && n <= l->max_attrs);
    trace_add(t, (size_t)r);
    trace_add(t, n);
    for (size_t i = 0; i < n; i++) {
        REQUIRE(a[i].name >= buf && a[i].name < buf + r);
        REQUIRE(a[i].value == a[i].name + a[i].name_len + 1);
        REQUIRE(a[i].value + a[i].value_len < buf + r);
        REQUIRE(a[i].name_len >= 1 && a[i].name_len <= OP_POLICY_MAX_NAME);
        REQUIRE(a[i].name_len + 1 + a[i].value_len <= l->max_line);
        for (size_t j = 0; j < a[i].name_len; j++)
            REQUIRE(name_char((unsigned char)a[i].name[j]));
        REQUIRE(a[i].name[a[i].name_len] == '=');
        for (size_t j = 0; j < a[i].value_len; j++) {
            char c = a[i].value[j];
            REQUIRE(c != '\0' && c != '\r' && c != '\n');
        }
        const char *eol = a[i].value + a[i].value_len;
        REQUIRE(eol[0] == '\n' || (eol[0] == '\r' && eol[1] == '\n'));
        if (i > 0)
            REQUIRE(a[i].name > a[i - 1].value);
        for (size_t j = 0; j < i; j++)
            REQUIRE(a[j].name_len != a[i].name_len ||
                    memcmp(a[j].name, a[i].name, a[i].name_len) != 0);
        trace_add(t, (size_t)(a[i].name - buf));
        trace_add(t, a[i].name_len);
        trace_add(t, a[i].value_len);
    }
}

/* Feeds stream[0..len) in chunks of chunk bytes (0: all at once); with
 * fresh, a new parser for each request. */
static void feed(const op_policy_limits_t *lim, const char *stream, size_t len, size_t chunk,
                 int fresh, trace_t *t)
{
    op_policy_parser_t p;
    op_policy_parser_init(&p, lim);
    char *cb = NULL;
    size_t clen = 0, fed = 0;
    t->last = 0;
    while (fed < len && t->last == 0) {
        size_t n = chunk == 0 || chunk > len - fed ? len - fed : chunk;
        char *nb = malloc(clen + n);
        REQUIRE(nb != NULL);
        if (clen)
            memcpy(nb, cb, clen);
        memcpy(nb + clen, stream + fed, n);
        free(cb);
        cb = nb;
        clen += n;
        fed += n;
        for (;;) {
            ssize_t r = op_policy_parse(&p, cb, clen);
            if (r < 0) {
                REQUIRE(r >= -OP_POLICY_EEMPTY && r <= -OP_POLICY_ELINE);
                REQUIRE(op_policy_parse(&p, cb, clen) == r); /* sticky */
                t->last = r;
                break;
            }
            if (r == 0) {
                REQUIRE(p.scanned <= clen);
                REQUIRE(p.line_start <= p.scanned);
                break;
            }
            check_request(&p, cb, clen, r, t);
            if (fresh) {
                op_policy_parser_free(&p);
                op_policy_parser_init(&p, lim);
            }
            memmove(cb, cb + r, clen - (size_t)r);
            clen -= (size_t)r;
        }
    }
    t->pending = t->last ? 0 : clen;
    free(cb);
    op_policy_parser_free(&p);
}

static void check_encode(const uint8_t *data, size_t size)
{
    static char out[OP_POLICY_MAX_ACTION + 16];
    size_t alen = size > OP_POLICY_MAX_ACTION + 5 ? OP_POLICY_MAX_ACTION + 5 : size;
    size_t want_len = alen > OP_POLICY_MAX_ACTION ? OP_POLICY_MAX_ACTION : alen;
    size_t n = op_policy_encode(out, sizeof(out), (const char *)data, alen);
    REQUIRE(n == 7 + want_len + 2);
    REQUIRE(memcmp(out, "action=", 7) == 0);
    REQUIRE(out[n - 2] == '\n' && out[n - 1] == '\n');
    for (size_t i = 0; i < n - 2; i++) {
        unsigned char c = (unsigned char)out[i];
        REQUIRE(c >= 0x20 && c != 0x7f); /* so "\n\n" only at the end */
    }
    for (size_t i = 0; i < want_len; i++) {
        unsigned char c = data[i];
        REQUIRE((unsigned char)out[7 + i] == (c < 0x20 || c == 0x7f ? ' ' : c));
    }
    REQUIRE(op_policy_encode(out, n - 1, (const char *)data, alen) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = data[0] & 31;
    const op_policy_limits_t *lim = &limit_sets[data[0] >> 5];
    const char *stream = (const char *)data + 1;
    size_t len = size - 1;

    trace_t whole = {0}, chunked = {0}, cold = {0};
    feed(lim, stream, len, 0, 0, &whole);
    feed(lim, stream, len, chunk ? chunk : 1, 0, &chunked);
    feed(lim, stream, len, 0, 1, &cold);
    REQUIRE(whole.n == chunked.n);
    REQUIRE(whole.n == 0 || memcmp(whole.v, chunked.v, whole.n * sizeof(size_t)) == 0);
    REQUIRE(whole.last == chunked.last);
    REQUIRE(whole.pending == chunked.pending);
    REQUIRE(whole.n == cold.n);
    REQUIRE(whole.n == 0 || memcmp(whole.v, cold.v, whole.n * sizeof(size_t)) == 0);
    REQUIRE(whole.last == cold.last);
    REQUIRE(whole.pending == cold.pending);
    free(whole.v);
    free(chunked.v);
    free(cold.v);

    check_encode(data + 1, len);
    return 0;
}
