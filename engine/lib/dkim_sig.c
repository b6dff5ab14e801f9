/* DKIM-Signature tag lists (RFC 6376 3.2): a hand-written scanner over one
 * buffer, no allocation, so a hostile header costs one linear pass. */
#include "lib/dkim_sig.h"

#include "lib/names.h"

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <string.h>
#include <strings.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

/* FWS as a parser of an unfolded-or-folded header sees it: WSP, and CRLF
 * (or a bare LF, which Postfix's milter hands over) followed by WSP.  A
 * line break not followed by WSP cannot occur inside one field's value;
 * it is refused as a byte outside the grammar. */
static size_t skip_fws(const char *s, size_t len, size_t i)
{
    for (;;) {
        if (i < len && (s[i] == ' ' || s[i] == '\t')) {
            i++;
        } else if (i + 1 < len && s[i] == '\r' && s[i + 1] == '\n' && i + 2 < len &&
                   (s[i + 2] == ' ' || s[i + 2] == '\t')) {
            i += 3;
        } else if (i < len && s[i] == '\n' && i + 1 < len && (s[i + 1] == ' ' || s[i + 1] == '\t')) {
            i += 2;
        } else {
            return i;
        }
    }
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
/* VALCHAR: %x21-3A / %x3C-7E, every visible byte but ';' */
static int is_valchar(char c) { return c >= 0x21 && c <= 0x7e && c != ';'; }

static int span_is(op_dkim_span_t sp, const char *lit)
{
    size_t n = strlen(lit);
    return sp.len == n && strncasecmp(sp.p, lit, n) == 0;
}

/* A decimal number of at most max_digits digits that fits in 63 bits. */
static int parse_num(op_dkim_span_t sp, size_t max_digits, uint64_t *out)
{
    if (sp.len == 0 || sp.len > max_digits)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < sp.len; i++) {
        if (!is_digit(sp.p[i]))
            return -1;
        if (v > (UINT64_C(1) << 62) / 5) /* v*10 would pass 2^63 */
            return -1;
        v = v * 10 + (uint64_t)(sp.p[i] - '0');
    }
    *out = v;
    return 0;
}

static int parse_canon(op_dkim_span_t sp, op_dkim_canon_t *out)
{
    if (span_is(sp, "simple"))
        *out = OP_DKIM_CANON_SIMPLE;
    else if (span_is(sp, "relaxed"))
        *out = OP_DKIM_CANON_RELAXED;
    else
        return -1;
    return 0;
}

/* h= is a colon-separated list of field names with FWS around them; the
 * RFC requires "from" among them (5.4). */
static int h_has_from(op_dkim_span_t h)
{
    size_t i = 0;
    while (i < h.len) {
        size_t j = i;
        while (j < h.len && h.p[j] != ':')
            j++;
        size_t a = i, b = j;
        while (a < b && (h.p[a] == ' ' || h.p[a] == '\t' || h.p[a] == '\r' || h.p[a] == '\n'))
            a++;
        while (b > a && (h.p[b - 1] == ' ' || h.p[b - 1] == '\t' || h.p[b - 1] == '\r' ||
                         h.p[b - 1] == '\n'))
            b--;
        if (b - a == 4 && strncasecmp(h.p + a, "from", 4) == 0)
            return 1;
        i = j + 1;
    }
    return 0;
}

static op_dkim_span_t *slot(op_dkim_sig_t *sig, const char *name, size_t n)
{
    if (n == 1) {
        switch (name[0]) {
        case 'v': return &sig->v;
        case 'a': return &sig->a;
        case 'b': return &sig->b;
        case 'c': return &sig->c;
        case 'd': return &sig->d;
        case 'h': return &sig->h;
        case 'i': return &sig->i;
        case 'l': return &sig->l;
        case 'q': return &sig->q;
        case 's': return &sig->s;
        case 't': return &sig->t;
        case 'x': return &sig->x;
        default: return NULL;
        }
    }
    if (n == 2 && name[0] == 'b' && name[1] == 'h')
        return &sig->bh;
    return NULL;
}

static int scan(const char *s, size_t len, op_dkim_sig_t *sig, char *err, size_t errlen)
{
    size_t i = 0;
    for (;;) {
        i = skip_fws(s, len, i);
        if (i >= len)
            return 0; /* empty list, or a trailing ';' */
        size_t n0 = i;
        if (!is_alpha(s[i]))
            return fail(err, errlen, "bad tag name at byte %zu", i);
        while (i < len && (is_alpha(s[i]) || is_digit(s[i]) || s[i] == '_'))
            i++;
        size_t nlen = i - n0;
        i = skip_fws(s, len, i);
        if (i >= len || s[i] != '=')
            return fail(err, errlen, "tag %.*s without '='", (int)(nlen > 16 ? 16 : nlen), s + n0);
        i = skip_fws(s, len, i + 1);
        size_t v0 = i, vend = i;
        while (i < len && s[i] != ';') {
            if (is_valchar(s[i])) {
                i++;
                vend = i;
                continue;
            }
            size_t k = skip_fws(s, len, i);
            if (k == i)
                return fail(err, errlen, "byte 0x%02x in the value of %.*s", (unsigned char)s[i],
                            (int)(nlen > 16 ? 16 : nlen), s + n0);
            i = k;
        }
        op_dkim_span_t *sp = slot(sig, s + n0, nlen);
        if (sp) {
            if (sp->p)
                return fail(err, errlen, "duplicate tag %.*s", (int)nlen, s + n0);
            sp->p = s + v0;
            sp->len = vend - v0;
        }
        if (i >= len)
            return 0;
        i++; /* ';' */
    }
}

int op_dkim_sig_parse(const char *value, size_t len, op_dkim_sig_t *out, char *err,
                      size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (scan(value, len, out, err, errlen) != 0)
        return -1;
    static const struct {
        const char *name;
        size_t off;
    } required[] = {
        {"v", offsetof(op_dkim_sig_t, v)},   {"a", offsetof(op_dkim_sig_t, a)},
        {"b", offsetof(op_dkim_sig_t, b)},   {"bh", offsetof(op_dkim_sig_t, bh)},
        {"d", offsetof(op_dkim_sig_t, d)},   {"h", offsetof(op_dkim_sig_t, h)},
        {"s", offsetof(op_dkim_sig_t, s)},
    };
    for (size_t k = 0; k < sizeof required / sizeof required[0]; k++) {
        const op_dkim_span_t *sp = (const op_dkim_span_t *)((const char *)out + required[k].off);
        if (!sp->p)
            return fail(err, errlen, "no %s= tag", required[k].name);
    }
    if (!span_is(out->v, "1"))
        return fail(err, errlen, "v= is not 1");
    if (span_is(out->a, "rsa-sha256"))
        out->alg = OP_DKIM_ALG_RSA_SHA256;
    else if (span_is(out->a, "ed25519-sha256"))
        out->alg = OP_DKIM_ALG_ED25519_SHA256;
    else if (span_is(out->a, "rsa-sha1"))
        out->alg = OP_DKIM_ALG_RSA_SHA1;
    else
        return fail(err, errlen, "unknown a= algorithm");
    out->hcanon = out->bcanon = OP_DKIM_CANON_SIMPLE;
    if (out->c.p) {
        const char *slash = memchr(out->c.p, '/', out->c.len);
        op_dkim_span_t hc = {out->c.p, slash ? (size_t)(slash - out->c.p) : out->c.len};
        if (parse_canon(hc, &out->hcanon) != 0)
            return fail(err, errlen, "unknown c= canonicalization");
        if (slash) {
            op_dkim_span_t bc = {slash + 1, out->c.len - hc.len - 1};
            if (parse_canon(bc, &out->bcanon) != 0)
                return fail(err, errlen, "unknown c= canonicalization");
        }
    }
    if (!h_has_from(out->h))
        return fail(err, errlen, "h= does not sign From");
    /* 76 digits in the RFC's grammar; more than 2^63 bytes or seconds is
     * no message we will see, so such a number is refused, not wrapped. */
    if (out->l.p) {
        if (parse_num(out->l, 76, &out->body_len) != 0)
            return fail(err, errlen, "bad l=");
        out->has_l = 1;
    }
    if (out->t.p) {
        if (parse_num(out->t, 76, &out->sig_time) != 0)
            return fail(err, errlen, "bad t=");
        out->has_t = 1;
    }
    if (out->x.p) {
        if (parse_num(out->x, 76, &out->expires) != 0)
            return fail(err, errlen, "bad x=");
        out->has_x = 1;
        if (out->has_t && out->expires < out->sig_time)
            return fail(err, errlen, "x= before t=");
    }
    char d[OP_NAME_MAX + 1];
    if (op_name_normalize(out->d.p, out->d.len, d, sizeof d) != 0)
        return fail(err, errlen, "d= is no domain name");
    char key[OP_NAME_MAX + 1];
    if (op_dkim_key_name(out, key, sizeof key) < 0)
        return fail(err, errlen, "s= is no selector");
    /* i= is [local-part] "@" domain, the domain d= or below it (3.5) */
    if (out->i.p) {
        const char *at = memrchr(out->i.p, '@', out->i.len);
        if (!at)
            return fail(err, errlen, "i= without '@'");
        char idom[OP_NAME_MAX + 1];
        size_t ilen = out->i.len - (size_t)(at + 1 - out->i.p);
        if (op_name_normalize(at + 1, ilen, idom, sizeof idom) != 0)
            return fail(err, errlen, "i= domain is no domain name");
        size_t dl = strlen(d), il = strlen(idom);
        if (!(il == dl && strcmp(idom, d) == 0) &&
            !(il > dl && idom[il - dl - 1] == '.' && strcmp(idom + il - dl, d) == 0))
            return fail(err, errlen, "i= is not within d=");
    }
    return 0;
}

int op_dkim_key_name(const op_dkim_sig_t *sig, char *out, size_t cap)
{
    static const char mid[] = "._domainkey.";
    char raw[OP_NAME_MAX + 2];
    if (!sig->s.p || !sig->d.p || sig->s.len + sizeof mid - 1 + sig->d.len >= sizeof raw)
        return -1;
    /* a selector is dot-atoms of letters, digits and '-' (3.1); a '.' at
     * either end, or anything else, would change which name is asked */
    if (sig->s.len == 0 || sig->s.p[0] == '.' || sig->s.p[sig->s.len - 1] == '.')
        return -1;
    for (size_t k = 0; k < sig->s.len; k++) {
        char c = sig->s.p[k];
        if (!is_alpha(c) && !is_digit(c) && c != '-' && c != '.' && c != '_')
            return -1;
    }
    if (sig->d.len == 0 || sig->d.p[0] == '.')
        return -1;
    memcpy(raw, sig->s.p, sig->s.len);
    memcpy(raw + sig->s.len, mid, sizeof mid - 1);
    memcpy(raw + sig->s.len + sizeof mid - 1, sig->d.p, sig->d.len);
    size_t n = sig->s.len + sizeof mid - 1 + sig->d.len;
    if (op_name_normalize(raw, n, out, cap) != 0)
        return -1;
    return (int)strlen(out);
}
