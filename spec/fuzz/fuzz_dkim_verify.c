/* libFuzzer target for the DKIM verifier (engine/lookup/dkim_verify.c) and
 * the libopendkim under it: whatever a DKIM-Signature field and its key
 * record hold, verifying gives verdicts and never crashes the daemon.
 *
 * The input is split at the first two NUL bytes: a DKIM-Signature value,
 * a key record (set for every key the signature names), and a body.  The
 * From, To and Subject fields are fixed.
 *
 *   make fuzz   (builds build/fuzz/fuzz_dkim_verify and runs it) */
#include "lookup/dkim_verify.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 16384)
        return 0;
    const char *p = (const char *)data;
    const char *z1 = memchr(p, 0, size);
    size_t sl = z1 ? (size_t)(z1 - p) : size;
    const char *key = z1 ? z1 + 1 : "";
    size_t rest = z1 ? size - sl - 1 : 0;
    const char *z2 = memchr(key, 0, rest);
    size_t kl = z2 ? (size_t)(z2 - key) : rest;
    const char *body = z2 ? z2 + 1 : "";
    size_t bl = z2 ? rest - kl - 1 : 0;

    op_dkim_msg_t *m = op_dkim_msg_new();
    if (m == NULL)
        abort();
    op_dkim_msg_header(m, "DKIM-Signature", 14, p, sl);
    op_dkim_msg_header(m, "From", 4, "a@inst.test", 11);
    op_dkim_msg_header(m, "To", 2, "b@example.net", 13);
    op_dkim_msg_header(m, "Subject", 7, "fuzz", 4);
    size_t n = op_dkim_msg_eoh(m);
    for (size_t i = 0; i < n; i++)
        op_dkim_msg_set_key(m, i, OP_DKIM_KEY_OK, key, kl);
    op_dkim_msg_body(m, body, bl);
    const op_dkim_verdict_t *v;
    size_t nv = op_dkim_msg_eom(m, &v);
    for (size_t i = 0; i < nv; i++)
        if (v[i].reason == NULL || strlen(v[i].d) >= sizeof v[i].d)
            abort();
    op_dkim_msg_free(m);
    return 0;
}
