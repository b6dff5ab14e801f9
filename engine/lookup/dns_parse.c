#include "lookup/dns_parse.h"

#include "core/mem.h"

#include <arpa/inet.h>
#include <ares.h>
#include <string.h>
#include <strings.h>

op_dns_result_t *op__dns_result_new(op_dns_status_t status, uint32_t ttl)
{
    static uint64_t serial; /* the loop thread's only: results are made there */
    op_dns_result_t *r = op_calloc(1, sizeof *r);
    r->refs = 1;
    r->serial = ++serial;
    r->status = status;
    r->ttl = ttl;
    return r;
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* The name at p in normal form (lower case, no trailing dot; "." for the
 * root).  Returns the bytes it takes in the message, or -1. */
static long read_name(const unsigned char *p, const unsigned char *abuf, int alen, char *out,
                      size_t cap)
{
    char *name = NULL;
    long enclen = 0;
    if (ares_expand_name(p, abuf, alen, &name, &enclen) != ARES_SUCCESS)
        return -1;
    size_t n = strlen(name);
    if (n > 0 && name[n - 1] == '.')
        n--;
    if (n + 2 > cap) {
        ares_free_string(name);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = (name[i] >= 'A' && name[i] <= 'Z') ? (char)(name[i] - 'A' + 'a') : name[i];
    out[n] = '\0';
    if (n == 0)
        strcpy(out, ".");
    ares_free_string(name);
    return enclen;
}

static void add_rr(op_dns_result_t *r, size_t *cap, uint16_t pref, const char *text, size_t len)
{
    if (r->n == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        r->rr = op_realloc(r->rr, *cap * sizeof *r->rr);
    }
    op_dns_rr_t *rr = &r->rr[r->n++];
    rr->pref = pref;
    rr->len = (uint16_t)len;
    rr->text = op_strndup(text, len);
}

static int rr_cmp(const void *a, const void *b)
{
    const op_dns_rr_t *x = a, *y = b;
    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->text, y->text, n);
    if (c != 0)
        return c;
    return x->len < y->len ? -1 : x->len > y->len;
}

typedef struct {
    char owner[OP_NAME_MAX + 2];
    uint16_t type;
    uint32_t ttl;
    const unsigned char *rdata;
    uint16_t rdlen;
} rrhdr_t;

/* Reads one RR header at *pos; moves *pos past the RR. */
static int read_rr(const unsigned char *abuf, int alen, long *pos, rrhdr_t *h)
{
    long used = read_name(abuf + *pos, abuf, alen, h->owner, sizeof h->owner);
    if (used < 0 || *pos + used + 10 > alen)
        return -1;
    const unsigned char *p = abuf + *pos + used;
    h->type = get16(p);
    h->ttl = get32(p + 4);
    if (h->ttl > 0x7fffffff) /* RFC 2181: treat as zero */
        h->ttl = 0;
    h->rdlen = get16(p + 8);
    h->rdata = p + 10;
    if (*pos + used + 10 + h->rdlen > alen)
        return -1;
    *pos += used + 10 + h->rdlen;
    return 0;
}

/* Appends the record's value to r; -1 when its rdata is malformed. */
static int add_value(op_dns_result_t *r, size_t *cap, const rrhdr_t *h, const unsigned char *abuf,
                     int alen)
{
    char buf[OP_NAME_MAX + 2];
    switch (h->type) {
    case OP_DNS_A:
    case OP_DNS_AAAA: {
        int af = h->type == OP_DNS_A ? AF_INET : AF_INET6;
        if (h->rdlen != (af == AF_INET ? 4 : 16))
            return -1;
        char ip[INET6_ADDRSTRLEN];
        inet_ntop(af, h->rdata, ip, sizeof ip);
        add_rr(r, cap, 0, ip, strlen(ip));
        return 0;
    }
    case OP_DNS_MX:
        if (h->rdlen < 3 || read_name(h->rdata + 2, abuf, alen, buf, sizeof buf) < 0)
            return -1;
        add_rr(r, cap, get16(h->rdata), buf, strlen(buf));
        return 0;
    case OP_DNS_PTR:
        if (read_name(h->rdata, abuf, alen, buf, sizeof buf) < 0)
            return -1;
        add_rr(r, cap, 0, buf, strlen(buf));
        return 0;
    case OP_DNS_TXT: {
        char txt[65536];
        size_t n = 0;
        for (uint16_t i = 0; i < h->rdlen;) {
            uint8_t l = h->rdata[i++];
            if (i + l > h->rdlen)
                return -1;
            memcpy(txt + n, h->rdata + i, l);
            n += l;
            i = (uint16_t)(i + l);
        }
        add_rr(r, cap, 0, txt, n);
        return 0;
    }
    }
    return 0;
}

int op__dns_parse(const unsigned char *abuf, int alen, const char *qname, int qtype,
                  op__dns_answer_t *out)
{
    memset(out, 0, sizeof *out);
    if (alen < 12)
        return -1;
    out->rcode = abuf[3] & 0x0f;
    unsigned qd = get16(abuf + 4), an = get16(abuf + 6), ns = get16(abuf + 8);
    long pos = 12;
    for (unsigned i = 0; i < qd; i++) {
        char tmp[OP_NAME_MAX + 2];
        long used = read_name(abuf + pos, abuf, alen, tmp, sizeof tmp);
        if (used < 0 || pos + used + 4 > alen)
            return -1;
        pos += used + 4;
    }
    if (out->rcode != 0 && out->rcode != 3)
        return 0;

    /* Follow the chain from qname through the answer section; records may
     * come in any order, so the section is walked once per hop. */
    long an_start = pos;
    char cur[OP_NAME_MAX + 2];
    snprintf(cur, sizeof cur, "%s", qname);
    uint32_t ttl = UINT32_MAX;
    op_dns_result_t *r = op__dns_result_new(OP_DNS_OK, 0);
    size_t cap = 0;
    long an_end = an_start;
    for (int hop = 0; hop <= OP_DNS_MAX_CNAME; hop++) {
        long p = an_start;
        const char *next = NULL;
        char target[OP_NAME_MAX + 2];
        for (unsigned i = 0; i < an; i++) {
            rrhdr_t h;
            if (read_rr(abuf, alen, &p, &h) != 0)
                goto bad;
            if (strcasecmp(h.owner, cur) != 0)
                continue;
            if (h.type == qtype) {
                if (add_value(r, &cap, &h, abuf, alen) != 0)
                    goto bad;
                if (h.ttl < ttl)
                    ttl = h.ttl;
            } else if (h.type == 5 && next == NULL) {
                if (read_name(h.rdata, abuf, alen, target, sizeof target) < 0)
                    goto bad;
                next = target;
                if (h.ttl < ttl)
                    ttl = h.ttl;
            }
        }
        an_end = p;
        if (r->n > 0 || next == NULL)
            break;
        if (hop == OP_DNS_MAX_CNAME)
            goto bad; /* a loop or a chain too long */
        snprintf(cur, sizeof cur, "%s", next);
        out->hops++;
    }
    if (r->n == 0 && out->hops > 0 && out->rcode == 0) {
        /* The chain leaves this answer without data: ask for its end. */
        snprintf(out->cname, sizeof out->cname, "%s", cur);
    }
    /* The authority section: an SOA makes a negative answer cacheable. */
    pos = an_end;
    for (unsigned i = 0; i < ns; i++) {
        rrhdr_t h;
        if (read_rr(abuf, alen, &pos, &h) != 0)
            break; /* the answer itself was fine; ignore a broken tail */
        if (h.type == 6 && h.rdlen >= 20) {
            uint32_t minimum = get32(h.rdata + h.rdlen - 4);
            out->has_soa = 1;
            out->neg_ttl = h.ttl < minimum ? h.ttl : minimum;
        }
    }
    if (r->n > 1)
        qsort(r->rr, r->n, sizeof *r->rr, rr_cmp);
    if (r->n > 0)
        r->status = OP_DNS_OK;
    else
        r->status = out->rcode == 3 ? OP_DNS_NXDOMAIN : OP_DNS_NODATA;
    out->ttl = ttl == UINT32_MAX ? 0 : ttl;
    r->ttl = r->n > 0 ? out->ttl : out->neg_ttl;
    out->res = r;
    return 0;
bad:
    op_dns_result_unref(r);
    return -1;
}
