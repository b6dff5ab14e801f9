/* Postfix policy delegation protocol codec: see proto_policy.h.
 *
 * Parser state between calls is offsets only (the caller's buffer may move):
 *   scanned     bytes of the current request already examined; every byte
 *               before it is known to be valid (no NUL, no bare CR, within
 *               the limits).  A CR at the very end of the buffer is not
 *               counted as examined: the next byte decides whether it is the
 *               first half of a "\r\n" or a bare CR.
 *   line_start  offset of the line being scanned; every line before it has
 *               been fully checked and, if it is an attribute, recorded.
 *   nattrs      attributes recorded so far.
 * A scanned of 0 with nattrs > 0 means "a request was just returned": the
 * attributes stay readable until the next call, which starts afresh.  A
 * scanned of SIZE_MAX means the parser failed; line_start then holds the
 * error code, returned again by every later call.
 *
 * The attrs allocation holds three arrays of capacity limits.max_attrs: the
 * public op_policy_attr_t array, then the name offsets (size_t) and a small
 * hash key per name (uint32_t) for the duplicate check.  The name and value
 * pointers are filled in only when a request is complete, from the offsets
 * and the buffer of that call.
 *
 * Error order: the error reported is the one of the first offending byte of
 * the stream (for line-level errors: the "\n" ending that line), so the
 * result never depends on how the bytes were split into calls.  When one
 * byte offends in several ways: NUL, then bare CR, then line length.
 *
 * Cost: per call, memchr for "\n", NUL and CR over the bytes not yet
 * examined, plus a table lookup per name byte on each complete line. */
#include "proto_policy.h"

#include "log.h"
#include "mem.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* [A-Za-z0-9_.-]; bytes 0x80 and above are zero. */
static const unsigned char name_ok[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0, /* 0x20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, /* 0x50 */
    0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, /* 0x70 */
};

/* The request length is returned as ssize_t, and offsets plus a line's
 * bounds must not overflow: far above any sane configuration. */
#define MAX_REQUEST_CAP ((size_t)SSIZE_MAX / 4)
/* The attribute arrays are allocated whole and duplicates are found by a
 * linear scan: keep both bounded whatever the configuration says. */
#define MAX_ATTRS_CAP 4096

static size_t *name_offs(const op_policy_parser_t *p)
{
    return (size_t *)(void *)(p->attrs + p->limits.max_attrs);
}

static uint32_t *name_keys(const op_policy_parser_t *p)
{
    return (uint32_t *)(void *)(name_offs(p) + p->limits.max_attrs);
}

void op_policy_parser_init(op_policy_parser_t *p, const op_policy_limits_t *limits)
{
    op_policy_limits_t l = {
        .max_line = OP_POLICY_MAX_LINE_DEFAULT,
        .max_attrs = OP_POLICY_MAX_ATTRS_DEFAULT,
        .max_request = OP_POLICY_MAX_REQUEST_DEFAULT,
    };
    if (limits != NULL) {
        if (limits->max_line != 0)
            l.max_line = limits->max_line;
        if (limits->max_attrs != 0)
            l.max_attrs = limits->max_attrs;
        if (limits->max_request != 0)
            l.max_request = limits->max_request;
    }
    /* Clamp to what can be reached, which changes no result: a line cannot
     * be longer than its request, and an attribute takes at least 3 bytes
     * ("a=\n"), so a request of max_request bytes has fewer than
     * max_request / 3 of them.  MAX_ATTRS_CAP is a hard bound. */
    if (l.max_request > MAX_REQUEST_CAP)
        l.max_request = MAX_REQUEST_CAP;
    if (l.max_line > l.max_request)
        l.max_line = l.max_request;
    if (l.max_attrs > l.max_request / 3)
        l.max_attrs = l.max_request / 3;
    if (l.max_attrs > MAX_ATTRS_CAP)
        l.max_attrs = MAX_ATTRS_CAP;

    memset(p, 0, sizeof(*p));
    p->limits = l;
    p->attrs = op_calloc(l.max_attrs,
                         sizeof(op_policy_attr_t) + sizeof(size_t) + sizeof(uint32_t));
}

void op_policy_parser_free(op_policy_parser_t *p)
{
    free(p->attrs);
    p->attrs = NULL;
    p->nattrs = 0;
}

static ssize_t fail(op_policy_parser_t *p, int code)
{
    p->scanned = SIZE_MAX;
    p->line_start = (size_t)code;
    p->nattrs = 0;
    return -(ssize_t)code;
}

/* A complete "name=value" line of len > 0 bytes at buf[ls]: checks it and
 * records it.  Returns 0 or an error code. */
static int add_attr(op_policy_parser_t *p, const char *buf, size_t ls, size_t len)
{
    const unsigned char *line = (const unsigned char *)buf + ls;
    size_t n = 0;
    while (n < len && name_ok[line[n]])
        n++;
    if (n == len || line[n] != '=')
        return memchr(line + n, '=', len - n) ? OP_POLICY_ENAME : OP_POLICY_ESYNTAX;
    if (n == 0 || n > OP_POLICY_MAX_NAME)
        return OP_POLICY_ENAME;

    size_t k = p->nattrs;
    if (k == p->limits.max_attrs)
        return OP_POLICY_EATTRS;

    /* Duplicate check: a linear scan over dense 32-bit keys (length, first,
     * middle and last byte); memcmp only when a key matches. */
    size_t *offs = name_offs(p);
    uint32_t *keys = name_keys(p);
    uint32_t key = (uint32_t)n | (uint32_t)line[0] << 8 | (uint32_t)line[n / 2] << 16 |
                   (uint32_t)line[n - 1] << 24;
    for (size_t i = 0; i < k; i++)
        if (keys[i] == key && memcmp(buf + offs[i], line, n) == 0)
            return OP_POLICY_EDUP;

    keys[k] = key;
    offs[k] = ls;
    p->attrs[k] = (op_policy_attr_t){.name = NULL, .name_len = n,
                                     .value = NULL, .value_len = len - n - 1};
    p->nattrs = k + 1;
    return 0;
}

ssize_t op_policy_parse(op_policy_parser_t *p, const char *buf, size_t len)
{
    if (p->scanned == SIZE_MAX)
        return -(ssize_t)p->line_start;
    if (p->scanned == 0)
        p->nattrs = 0; /* a fresh request (or the one after a returned one) */
    OP_ASSERT(len >= p->scanned);

    const size_t max_line = p->limits.max_line;
    const size_t max_req = p->limits.max_request;
    size_t pos = p->scanned, ls = p->line_start;

    while (pos < len) {
        /* Content of this line may use [ls, e); buf[e] may only be the line
         * end ("\n", or "\r" then "\n" at e + 1).  No byte of the request may
         * be at max_req or beyond. */
        size_t e = ls + max_line;
        size_t wend = len;
        if (wend > e + 2)
            wend = e + 2;
        if (wend > max_req)
            wend = max_req;
        const char *nlp = memchr(buf + pos, '\n', wend - pos);
        size_t stop = nlp ? (size_t)(nlp - buf) : wend;

        /* The first offending byte of [pos, stop), if any. */
        size_t bad = SIZE_MAX;
        int code = 0;
        const char *z = memchr(buf + pos, '\0', stop - pos);
        if (z != NULL) {
            bad = (size_t)(z - buf);
            code = OP_POLICY_ENUL;
        }
        const char *r = memchr(buf + pos, '\r', (z ? bad : stop) - pos);
        if (r != NULL) {
            size_t c = (size_t)(r - buf);
            int ok;
            if (c + 1 < stop)
                ok = 0; /* followed by something else than "\n" */
            else if (nlp != NULL || stop == len)
                ok = 1; /* "\r\n", or the last byte so far: undecided */
            else
                ok = buf[stop] == '\n'; /* the window stopped at a limit */
            if (!ok) {
                bad = c;
                code = OP_POLICY_ESYNTAX;
            }
        }
        /* buf[e] inside the window and not a good CR (a bad one is caught
         * above, and any earlier CR would be bad): the line is too long. */
        if (pos <= e && e < stop && e < bad && buf[e] != '\r') {
            bad = e;
            code = OP_POLICY_ELINE;
        }
        if (code != 0)
            return fail(p, code);

        if (nlp == NULL) {
            /* wend == len, or the window stopped at a limit: at e + 2 that is
             * always an error above, so here at max_req < len. */
            if (len > max_req)
                return fail(p, OP_POLICY_ESIZE);
            if (stop > ls && buf[stop - 1] == '\r')
                stop--; /* re-examine it with the byte after it */
            p->scanned = stop;
            p->line_start = ls;
            return 0;
        }

        size_t end = stop;
        if (end > ls && buf[end - 1] == '\r')
            end--;
        if (end == ls) {
            /* The empty line: end of the request. */
            if (p->nattrs == 0)
                return fail(p, OP_POLICY_EEMPTY);
            size_t *offs = name_offs(p);
            for (size_t i = 0; i < p->nattrs; i++) {
                op_policy_attr_t *a = &p->attrs[i];
                a->name = buf + offs[i];
                a->value = a->name + a->name_len + 1;
            }
            p->scanned = 0;
            p->line_start = 0;
            return (ssize_t)(stop + 1);
        }
        int err = add_attr(p, buf, ls, end - ls);
        if (err != 0)
            return fail(p, err);
        pos = ls = stop + 1;
    }
    p->scanned = pos;
    p->line_start = ls;
    return 0;
}

size_t op_policy_nattrs(const op_policy_parser_t *p) { return p->nattrs; }

const op_policy_attr_t *op_policy_attrs(const op_policy_parser_t *p) { return p->attrs; }

const char *op_policy_strerror(ssize_t err)
{
    switch (err < 0 ? -err : err) {
    case OP_POLICY_ELINE:
        return "line longer than the limit";
    case OP_POLICY_EATTRS:
        return "too many attributes in request";
    case OP_POLICY_ESIZE:
        return "request longer than the limit";
    case OP_POLICY_ENUL:
        return "NUL byte in request";
    case OP_POLICY_ESYNTAX:
        return "malformed line (no '=' or a bare CR)";
    case OP_POLICY_ENAME:
        return "empty, too long or invalid attribute name";
    case OP_POLICY_EDUP:
        return "duplicate attribute in request";
    case OP_POLICY_EEMPTY:
        return "empty request";
    default:
        return "unknown policy protocol error";
    }
}

size_t op_policy_encode(char *out, size_t cap, const char *action, size_t action_len)
{
    static const char prefix[] = "action=";
    const size_t plen = sizeof(prefix) - 1;
    if (action_len > OP_POLICY_MAX_ACTION)
        action_len = OP_POLICY_MAX_ACTION;
    size_t need = plen + action_len + 2;
    if (out == NULL || cap < need)
        return 0;
    memcpy(out, prefix, plen);
    char *o = out + plen;
    const unsigned char *a = (const unsigned char *)action;
    for (size_t i = 0; i < action_len; i++) {
        unsigned char c = a[i];
        o[i] = (char)(c < 0x20 || c == 0x7f ? ' ' : c);
    }
    o[action_len] = '\n';
    o[action_len + 1] = '\n';
    return need;
}
