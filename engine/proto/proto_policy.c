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
 * The attrs allocation holds, for a capacity of limits.max_attrs: the public
 * op_policy_attr_t array, the name offsets (size_t), a 32-bit key per name
 * (length and three of its bytes), the hash slot of each name (uint16_t), an
 * open-addressing hash table of attribute indexes + 1 (uint16_t, at least
 * twice the capacity) for the duplicate check, and the name cache: per name
 * its offset (uint16_t) and length (uint8_t) in NAME_CACHE_BYTES bytes of
 * names.  The name and value pointers are filled in only when a request is
 * complete, from the offsets and the buffer of that call.
 *
 * The name cache: a client sends the same names in the same order in every
 * request (Postfix: about 30, always in its own order), so the parser keeps
 * the names of the request before (as many of the first ones as fit in
 * NAME_CACHE_BYTES) and compares each line with the name at its place, one
 * memcmp and a check that "=" follows.  A line that matches needs neither
 * the per-byte name check (the cached name passed it) nor the duplicate
 * check (the cached names are distinct, and every attribute before it in
 * this request matched the cached name at its place, so they are the cached
 * names before it).  At the first line that does not match, the names so
 * far go into the duplicate table (without comparing: they are distinct)
 * and the rest of the request takes the full checks.  Either way a line is
 * accepted or refused exactly as without the cache.  When a request is
 * complete the cache keeps its first `matched` names and takes the request's
 * names after them.
 *
 * Error order: the error reported is the one of the first offending byte of
 * the stream (for line-level errors: the "\n" ending that line), so the
 * result never depends on how the bytes were split into calls.  When one
 * byte offends in several ways: NUL, then bare CR, then line length.
 *
 * Cost: one memchr per line for its "\n"; a memcmp per attribute while the
 * names are those of the request before (the name cache), else a table
 * lookup per name byte and a hash probe per attribute; NUL and CR are
 * looked for once per call, by memchr over all the bytes that call examined
 * (a CR costs one memchr more).
 * Lines are first cut and checked assuming there is no NUL or bare CR; the
 * validation then reports any such byte found before the error (or the end
 * of request) that the line checks came to. */
#include "proto/proto_policy.h"

#include "core/log.h"
#include "core/mem.h"

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
/* The attribute arrays are allocated whole, and indexes are uint16_t. */
#define MAX_ATTRS_CAP 4096
/* Bytes of cached names: Postfix's ~30 names take about 400. */
#define NAME_CACHE_BYTES 2048

typedef struct {
    size_t *offs;    /* offset of each name in the request */
    uint32_t *keys;  /* name_key() of each name */
    uint16_t *slots; /* hash slot of each name */
    uint16_t *table; /* index + 1, or 0 */
    unsigned bits;   /* the table has 1 << bits slots */
    uint16_t *coff;  /* offset of each cached name in cbytes */
    uint8_t *clen;   /* length of each cached name */
    char *cbytes;    /* the cached names, NAME_CACHE_BYTES */
} priv_t;

/* log2 of the hash table size: the power of two >= 2 * cap, at least 8. */
static unsigned table_bits(size_t cap)
{
    if (cap <= 4)
        return 3;
    return (unsigned)(64 - __builtin_clzll((unsigned long long)(2 * cap - 1)));
}

static priv_t priv(const op_policy_parser_t *p)
{
    size_t cap = p->limits.max_attrs;
    priv_t v;
    v.offs = (size_t *)(void *)(p->attrs + cap);
    v.keys = (uint32_t *)(void *)(v.offs + cap);
    v.slots = (uint16_t *)(void *)(v.keys + cap);
    v.table = v.slots + cap;
    v.bits = table_bits(cap);
    v.coff = v.table + ((size_t)1 << v.bits);
    v.clen = (uint8_t *)(void *)(v.coff + cap);
    v.cbytes = (char *)(v.clen + cap);
    return v;
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
    size_t cap = l.max_attrs;
    size_t size = cap * (sizeof(op_policy_attr_t) + sizeof(size_t) + sizeof(uint32_t) +
                         sizeof(uint16_t) + sizeof(uint16_t) + sizeof(uint8_t)) +
                  ((size_t)1 << table_bits(cap)) * sizeof(uint16_t) + NAME_CACHE_BYTES;
    p->attrs = op_calloc(1, size);
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

static uint32_t name_key(const unsigned char *name, size_t n)
{
    return (uint32_t)n | (uint32_t)name[0] << 8 | (uint32_t)name[n / 2] << 16 |
           (uint32_t)name[n - 1] << 24;
}

static size_t key_slot(uint32_t key, unsigned bits)
{
    return (size_t)((key * UINT32_C(2654435761)) >> (32 - bits));
}

static void record(op_policy_parser_t *p, const priv_t *v, size_t k, size_t ls, size_t n,
                   size_t len)
{
    v->offs[k] = ls;
    p->attrs[k] = (op_policy_attr_t){.name = NULL, .name_len = n,
                                     .value = NULL, .value_len = len - n - 1};
    p->nattrs = k + 1;
}

/* a[0..n) == b[0..n), for 1 <= n <= OP_POLICY_MAX_NAME: a few word loads
 * (the last one overlapping) instead of a call to memcmp, which cost more
 * than the compare itself on names of 5 to 25 bytes. */
static int same_name(const unsigned char *a, const char *b, size_t n)
{
    uint64_t x, y;
    if (n >= 8) {
        for (size_t i = 0; i + 8 < n; i += 8) {
            memcpy(&x, a + i, 8);
            memcpy(&y, b + i, 8);
            if (x != y)
                return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        uint32_t u, v, u2, v2;
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        memcpy(&u2, a + n - 4, 4);
        memcpy(&v2, b + n - 4, 4);
        return u == v && u2 == v2;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != (unsigned char)b[i])
            return 0;
    return 1;
}

/* The request's names so far matched the cache and are distinct: they go
 * into the duplicate table for the lines that follow. */
static void hash_matched(op_policy_parser_t *p, const priv_t *v, const char *buf)
{
    size_t mask = ((size_t)1 << v->bits) - 1;
    for (size_t i = 0; i < p->nattrs; i++) {
        const unsigned char *name = (const unsigned char *)buf + v->offs[i];
        uint32_t key = name_key(name, p->attrs[i].name_len);
        size_t h = key_slot(key, v->bits);
        while (v->table[h] != 0)
            h = (h + 1) & mask;
        v->table[h] = (uint16_t)(i + 1);
        v->slots[i] = (uint16_t)h;
        v->keys[i] = key;
    }
    p->hashed = 1;
}

/* A complete "name=value" line of len > 0 bytes at buf[ls], followed by
 * "\n" or "\r": checks it and records it.  Returns 0 or an error code. */
static int add_attr(op_policy_parser_t *p, const priv_t *pv, const char *buf, size_t ls, size_t len)
{
    const unsigned char *line = (const unsigned char *)buf + ls;
    if (!p->hashed) {
        size_t k = p->nattrs;
        if (k < p->ncached) {
            size_t n = pv->clen[k];
            if (n < len && line[n] == '=' && same_name(line, pv->cbytes + pv->coff[k], n)) {
                record(p, pv, k, ls, n, len);
                p->matched = k + 1;
                return 0;
            }
        }
        hash_matched(p, pv, buf);
    }
    size_t n = 0;
    while (name_ok[line[n]]) /* stops at line[len] ("\n" or "\r") at worst */
        n++;
    if (line[n] != '=')
        return memchr(line + n, '=', len - n) ? OP_POLICY_ENAME : OP_POLICY_ESYNTAX;
    if (n == 0 || n > OP_POLICY_MAX_NAME)
        return OP_POLICY_ENAME;

    size_t k = p->nattrs;
    if (k == p->limits.max_attrs)
        return OP_POLICY_EATTRS;

    const priv_t v = *pv;
    uint32_t key = name_key(line, n);
    size_t mask = ((size_t)1 << v.bits) - 1;
    size_t h = key_slot(key, v.bits);
    for (uint16_t s; (s = v.table[h]) != 0; h = (h + 1) & mask)
        if (v.keys[s - 1] == key && memcmp(buf + v.offs[s - 1], line, n) == 0)
            return OP_POLICY_EDUP;
    v.table[h] = (uint16_t)(k + 1);
    v.slots[k] = (uint16_t)h;
    v.keys[k] = key;
    record(p, &v, k, ls, n, len);
    return 0;
}

/* A request is complete: the cache keeps its first p->matched names (they
 * are this request's first names) and takes the request's names after them,
 * as many as fit. */
static void cache_names(op_policy_parser_t *p, const priv_t *v, const char *buf)
{
    size_t m = p->matched;
    if (m == p->nattrs && m == p->ncached)
        return; /* the same names again: the common case */
    size_t used = m == 0 ? 0 : (size_t)v->coff[m - 1] + v->clen[m - 1];
    size_t i = m;
    for (; i < p->nattrs; i++) {
        size_t n = p->attrs[i].name_len;
        if (used + n > NAME_CACHE_BYTES)
            break;
        memcpy(v->cbytes + used, buf + v->offs[i], n);
        v->coff[i] = (uint16_t)used;
        v->clen[i] = (uint8_t)n;
        used += n;
    }
    p->ncached = i;
}

ssize_t op_policy_parse(op_policy_parser_t *p, const char *buf, size_t len)
{
    if (p->scanned == SIZE_MAX)
        return -(ssize_t)p->line_start;
    /* The arrays' places, once per call (not per attribute). */
    const priv_t v = priv(p);
    if (p->scanned == 0 && p->nattrs != 0) {
        /* The request before was returned: forget its names (the cache
         * keeps them). */
        if (p->hashed)
            for (size_t i = 0; i < p->nattrs; i++)
                v.table[v.slots[i]] = 0;
        p->nattrs = 0;
        p->matched = 0;
        p->hashed = 0;
    }
    OP_ASSERT(len >= p->scanned);

    const size_t max_line = p->limits.max_line;
    const size_t max_req = p->limits.max_request;
    const size_t pos0 = p->scanned;
    size_t pos = pos0, ls = p->line_start;
    size_t bad = SIZE_MAX; /* first offending byte found by the line checks */
    int code = 0;
    size_t x = len;  /* bytes [pos0, x) are to be checked for NUL and CR */
    size_t done = 0; /* length of the request completed, if any */

    /* Cut lines, assuming no NUL and no bare CR. */
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
        if (nlp == NULL) {
            x = wend;
            if (e < wend) {
                /* buf[e] is content, unless it is a CR: then buf[e + 1], if
                 * any, is content too (not "\n"), and the CR is bare. */
                if (buf[e] != '\r') {
                    bad = e;
                    code = OP_POLICY_ELINE;
                } else if (e + 1 < wend) {
                    bad = e + 1;
                    code = OP_POLICY_ELINE;
                }
            }
            /* Stopped short of len: at e + 2 that is an error above, so at
             * max_req, and the next byte makes the request too long. */
            if (code == 0 && wend < len) {
                bad = max_req;
                code = OP_POLICY_ESIZE;
            }
            break;
        }
        size_t n = (size_t)(nlp - buf);
        size_t end = n > ls && buf[n - 1] == '\r' ? n - 1 : n;
        if (end - ls > max_line) {
            /* The window ends at e + 2, so n <= e + 1, and end > e means
             * n == e + 1 with no CR before it: buf[e] is content. */
            bad = e;
            code = OP_POLICY_ELINE;
            x = n;
            break;
        }
        if (end == ls) {
            x = n;
            if (p->nattrs == 0) {
                bad = n;
                code = OP_POLICY_EEMPTY;
            } else {
                done = n + 1;
            }
            break;
        }
        int err = add_attr(p, &v, buf, ls, end - ls);
        if (err != 0) {
            bad = n;
            code = err;
            x = n;
            break;
        }
        pos = ls = n + 1;
    }

    /* Any NUL or bare CR in [pos0, x) before bad (or at it, for a NUL)?  A CR
     * followed by "\n" is fine; one at the end of the buffer is undecided. */
    const char *z = memchr(buf + pos0, '\0', x - pos0);
    if (z != NULL && (size_t)(z - buf) <= bad) {
        bad = (size_t)(z - buf);
        code = OP_POLICY_ENUL;
    }
    /* (No CR can be at bad itself: an ELINE is never put on a CR, a line
     * error is on its "\n", and ESIZE is at x.) */
    size_t climit = bad < x ? bad : x;
    for (size_t c = pos0; c < climit;) {
        const char *r = memchr(buf + c, '\r', climit - c);
        if (r == NULL)
            break;
        c = (size_t)(r - buf);
        if (c + 1 == len)
            break; /* undecided */
        if (buf[c + 1] != '\n') {
            bad = c;
            code = OP_POLICY_ESYNTAX;
            break;
        }
        c += 2;
    }
    if (code != 0)
        return fail(p, code);

    if (done != 0) {
        cache_names(p, &v, buf);
        for (size_t i = 0; i < p->nattrs; i++) {
            op_policy_attr_t *a = &p->attrs[i];
            a->name = buf + v.offs[i];
            a->value = a->name + a->name_len + 1;
        }
        p->scanned = 0;
        p->line_start = 0;
        return (ssize_t)done;
    }
    /* Need more. */
    OP_ASSERT(x == len);
    if (x > ls && buf[x - 1] == '\r')
        x--; /* re-examine it with the byte after it */
    p->scanned = x;
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
