/* libFuzzer target for the metrics endpoint's HTTP codec
 * (engine/metrics/metrics_http.c).
 *
 * The input is what a client sent.  The answer is one of the codes; once a
 * head is complete, more bytes after it do not change the answer; a prefix
 * of an input that answers "more" also answers "more" or 400 (a head can
 * only complete by growing).
 *
 *   make fuzz   (builds build/fuzz/fuzz_metrics_http and runs it) */
#include "metrics/metrics_http.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *buf = (const char *)data;
    int code = op_http_parse(buf, size);
    if (code != OP_HTTP_MORE && code != OP_HTTP_OK && code != OP_HTTP_BAD &&
        code != OP_HTTP_NOT_FOUND && code != OP_HTTP_METHOD)
        abort();
    if (code == OP_HTTP_MORE && size > 0) {
        int shorter = op_http_parse(buf, size - 1);
        if (shorter != OP_HTTP_MORE)
            abort();
    }
    if (code != OP_HTTP_MORE && code != OP_HTTP_BAD) {
        /* a complete head: trailing bytes are ignored */
        char *more = malloc(size + 5);
        memcpy(more, buf, size);
        memcpy(more + size, "XXXXX", 5);
        if (op_http_parse(more, size + 5) != code)
            abort();
        free(more);
    }
    char head[512];
    size_t n = op_http_head(head, sizeof head, code ? code : 400, size);
    if (n >= sizeof head || strlen(head) != n)
        abort();
    return 0;
}
