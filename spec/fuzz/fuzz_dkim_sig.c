/* libFuzzer target for the DKIM-Signature tag parser (engine/lib/dkim_sig.c).
 *
 * The input is one header value.  Every span must lie inside it; a success
 * must have every required tag and a key name; and the same value with
 * folding white space ("\r\n ") after every ';' must give the same outcome
 * and the same values, since RFC 6376 3.2 allows FWS there.
 *
 *   make fuzz   (builds build/fuzz/fuzz_dkim_sig and runs it) */
#include "lib/dkim_sig.h"
#include "lib/names.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(op_dkim_span_t sp, const char *lo, size_t len)
{
    if (sp.p && (sp.p < lo || sp.p + sp.len > lo + len))
        abort();
}

static int same(op_dkim_span_t a, op_dkim_span_t b)
{
    if (!a.p || !b.p)
        return !a.p && !b.p;
    return a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 8192)
        return 0;
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    op_dkim_sig_t a;
    char err[128];
    int rc = op_dkim_sig_parse(buf, size, &a, err, sizeof err);
    const op_dkim_span_t *all_a = &a.v;
    for (int k = 0; k < 13; k++)
        inside(all_a[k], buf, size);
    if (rc == 0) {
        if (!a.v.p || !a.a.p || !a.b.p || !a.bh.p || !a.d.p || !a.h.p || !a.s.p)
            abort();
        char key[OP_NAME_MAX + 1];
        if (op_dkim_key_name(&a, key, sizeof key) <= 0)
            abort();
    }
    size_t semis = 0;
    for (size_t i = 0; i < size; i++)
        semis += buf[i] == ';';
    char *folded = malloc(size + 3 * semis + 1);
    size_t n = 0;
    for (size_t i = 0; i < size; i++) {
        folded[n++] = buf[i];
        if (buf[i] == ';') {
            memcpy(folded + n, "\r\n ", 3);
            n += 3;
        }
    }
    op_dkim_sig_t b;
    int rc2 = op_dkim_sig_parse(folded, n, &b, err, sizeof err);
    if (rc2 != rc)
        abort();
    if (rc == 0) {
        const op_dkim_span_t *all_b = &b.v;
        for (int k = 0; k < 13; k++)
            if (!same(all_a[k], all_b[k]))
                abort();
        if (a.alg != b.alg || a.body_len != b.body_len || a.expires != b.expires)
            abort();
    }
    free(folded);
    free(buf);
    return 0;
}
