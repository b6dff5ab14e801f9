/* libFuzzer target for the scanners' codecs (engine/lookup/scan_codec.c):
 * clamd's answer, an HTTP/1.1 response, rspamd's /checkv2 JSON.
 *
 * Input: byte 0 chooses the codec (low 2 bits: 0 clamd, 1 HTTP, 2 rspamd,
 * 3 HTTP then rspamd on its body, as scan.c does) and, for HTTP, whether
 * the connection ended (bit 2) and a small body bound (bit 3); bytes 1..
 * are the answer, on a heap copy of exactly that size.  Checks:
 *   - clamd: the detail is NUL-terminated printable ASCII; INFECTED has a
 *     name without spaces; -1 only with status ERROR;
 *   - HTTP: DONE only with a status 200..599 and a body inside the input
 *     and within the bound; the input one byte shorter, the connection
 *     open, is not complete;
 *   - rspamd: names printable, at most OP_RSPAMD_MAX_SYMBOLS, sorted by
 *     score, symbols_seen >= nsymbols.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Iengine spec/fuzz/fuzz_scan_codec.c engine/lookup/scan_codec.c -o build/fuzz_scan_codec
 *   build/fuzz_scan_codec -max_total_time=60 spec/fuzz/corpus/scan_codec */
#include "lookup/scan_codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                              \
    do {                                                                           \
        if (!(cond)) {                                                             \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                               \
        }                                                                          \
    } while (0)

static void printable(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    REQUIRE(n < cap);
    for (size_t i = 0; i < n; i++)
        REQUIRE((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x7f);
}

static void check_rspamd(const char *buf, size_t len)
{
    op_rspamd_result_t r;
    int rc = op_rspamd_parse(buf, len, &r);
    REQUIRE(rc == 0 || rc == -1);
    if (rc != 0)
        return;
    printable(r.action, sizeof r.action);
    REQUIRE(r.nsymbols <= OP_RSPAMD_MAX_SYMBOLS);
    REQUIRE(r.symbols_seen >= r.nsymbols);
    for (size_t i = 0; i < r.nsymbols; i++) {
        printable(r.symbols[i].name, sizeof r.symbols[i].name);
        if (i > 0)
            REQUIRE(!(r.symbols[i].score > r.symbols[i - 1].score));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] & 3, eof = (data[0] >> 2) & 1;
    size_t max_body = (data[0] & 8) ? 16 : 65536;
    size_t len = size - 1;
    char *buf = malloc(len ? len : 1);
    memcpy(buf, data + 1, len);
    if (mode == 0) {
        op_clamd_result_t r;
        int rc = op_clamd_parse(buf, len, &r);
        printable(r.detail, sizeof r.detail);
        REQUIRE(rc == 0 || r.status == OP_CLAMD_ERROR);
        if (r.status == OP_CLAMD_INFECTED)
            REQUIRE(r.detail[0] != '\0' && strchr(r.detail, ' ') == NULL);
    } else if (mode == 2) {
        check_rspamd(buf, len);
    } else {
        op_http_response_t r;
        int rc = op_http_parse_response(buf, len, eof, max_body, &r);
        REQUIRE(rc >= OP_HTTP_ETRUNCATED && rc <= OP_HTTP_DONE);
        if (rc == OP_HTTP_DONE) {
            REQUIRE(r.status >= 200 && r.status <= 599);
            REQUIRE(r.body_off <= len && r.body_len <= len - r.body_off);
            REQUIRE(r.body_len <= max_body);
            /* no shorter prefix is complete while the connection is open */
            if (r.body_off + r.body_len > 0) {
                op_http_response_t p;
                REQUIRE(op_http_parse_response(buf, r.body_off + r.body_len - 1, 0, max_body, &p) !=
                        OP_HTTP_DONE);
            }
            if (mode == 3)
                check_rspamd(buf + r.body_off, r.body_len);
        }
    }
    free(buf);
    return 0;
}
