/* libFuzzer target for the milter codec (engine/proto/proto_milter.c).
 *
 * Byte 0 picks the chunk size of a second feeding (low 5 bits; 0 = byte by
 * byte) and whether a valid OPTNEG is put in front (bit 5), so the fuzzer
 * reaches the states after negotiation.  The stream is parsed whole and in
 * chunks, each call on a fresh heap copy of exactly the bytes received so
 * far; both must give the same commands and the same outcome, every
 * consumed length must fit the bytes given, and every decoded string must
 * lie inside the packet.  The reply encoders get the data as texts.
 *
 *   make fuzz   (builds build/fuzz/fuzz_proto_milter and runs it) */
#include "proto/proto_milter.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_CMDS 4096

static void inside(const char *s, const char *lo, const char *hi)
{
    if (s < lo || s >= hi || s + strlen(s) >= hi)
        abort();
}

static void check_msg(const op_milter_msg_t *m, const char *pkt, size_t len)
{
    const char *hi = pkt + len;
    switch (m->cmd) {
    case OP_MILTER_CONNECT:
        inside(m->u.connect.hostname, pkt, hi);
        if (m->u.connect.family != 'U')
            inside(m->u.connect.address, pkt, hi);
        break;
    case OP_MILTER_MACRO:
        for (size_t i = 0; i < m->u.macro.n; i++) {
            inside(m->u.macro.names[i], pkt, hi);
            inside(m->u.macro.values[i], pkt, hi);
        }
        break;
    case OP_MILTER_HELO: inside(m->u.helo.name, pkt, hi); break;
    case OP_MILTER_MAIL:
    case OP_MILTER_RCPT:
        if (m->u.envelope.nargs < 1 || m->u.envelope.nargs > OP_MILTER_MAX_ARGS)
            abort();
        for (size_t i = 0; i < m->u.envelope.nargs; i++)
            inside(m->u.envelope.args[i], pkt, hi);
        break;
    case OP_MILTER_HEADER:
        inside(m->u.header.name, pkt, hi);
        inside(m->u.header.value, pkt, hi);
        break;
    case OP_MILTER_BODY:
    case OP_MILTER_EOM:
        if (m->u.body.data < pkt || m->u.body.data + m->u.body.len > hi)
            abort();
        break;
    }
}

/* Returns the final parse result; writes the commands into cmds. */
static ssize_t run(const char *s, size_t len, size_t chunk, char *cmds, size_t *n)
{
    op_milter_limits_t lim = {.max_packet = 4096, .max_macros = 8};
    op_milter_parser_t p;
    op_milter_parser_init(&p, &lim);
    size_t have = 0, start = 0;
    ssize_t r = 0;
    *n = 0;
    while (have < len || start < have) {
        size_t more = chunk == 0 || have + chunk > len ? len - have : chunk;
        have += more;
        for (;;) {
            size_t avail = have - start;
            char *copy = malloc(avail ? avail : 1);
            memcpy(copy, s + start, avail);
            op_milter_msg_t m;
            r = op_milter_parse(&p, copy, avail, &m);
            if (r > 0) {
                if ((size_t)r > avail)
                    abort();
                check_msg(&m, copy, (size_t)r);
                if (*n < MAX_CMDS)
                    cmds[(*n)++] = m.cmd;
                start += (size_t)r;
            }
            free(copy);
            if (r <= 0)
                break;
        }
        if (r < 0 || more == 0)
            break;
    }
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = data[0] & 0x1f;
    static const char optneg[] = "\0\0\0\x0d" "O\0\0\0\6\0\0\1\xff\0\x1f\xff\xff";
    size_t pre = (data[0] & 0x20) ? sizeof optneg - 1 : 0;
    size_t len = pre + size - 1;
    char *s = malloc(len ? len : 1);
    memcpy(s, optneg, pre);
    memcpy(s + pre, data + 1, size - 1);

    static char a[MAX_CMDS], b[MAX_CMDS];
    size_t na, nb;
    ssize_t ra = run(s, len, 0, a, &na);
    ssize_t rb = run(s, len, chunk ? chunk : 1, b, &nb);
    if (ra != rb && !(ra >= 0 && rb >= 0))
        abort();
    if (na != nb || memcmp(a, b, na) != 0)
        abort();

    /* Encoders never overflow and always frame what they write. */
    char text[512], out[2048];
    size_t tl = size - 1 < sizeof text - 1 ? size - 1 : sizeof text - 1;
    memcpy(text, data + 1, tl);
    text[tl] = '\0';
    size_t n = op_milter_encode_replycode(out, sizeof out, 550, "5.7.1", text);
    if (n > 0) {
        uint32_t plen = (uint32_t)(unsigned char)out[0] << 24 | (uint32_t)(unsigned char)out[1] << 16 |
                        (uint32_t)(unsigned char)out[2] << 8 | (unsigned char)out[3];
        if (plen + 4 != n || out[n - 1] != '\0' || memchr(out + 5, '\n', n - 5))
            abort();
    }
    n = op_milter_encode_header(out, sizeof out, 'h', 0, text, text);
    if (n == 0 || memchr(out + 5, '\r', n - 5))
        abort();
    free(s);
    return 0;
}
