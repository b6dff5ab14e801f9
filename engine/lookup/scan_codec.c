/* The scanners' wire formats (scan_codec.h): no I/O, no allocation, every
 * loop bounded by the buffer it reads. */
#include "lookup/scan_codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- clamd --------------------------------------------------------- */

void op_clamd_chunk_header(uint32_t len, unsigned char out[4])
{
    out[0] = (unsigned char)(len >> 24);
    out[1] = (unsigned char)(len >> 16);
    out[2] = (unsigned char)(len >> 8);
    out[3] = (unsigned char)len;
}

/* Copies s[0..n) into dst as printable ASCII (others become '?'), cut to cap. */
static void copy_printable(char *dst, size_t cap, const char *s, size_t n)
{
    size_t i;
    for (i = 0; i < n && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)s[i];
        dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    dst[i] = '\0';
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

int op_clamd_parse(const char *buf, size_t len, op_clamd_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->status = OP_CLAMD_ERROR;
    while (len > 0 && (buf[len - 1] == '\r' || buf[len - 1] == ' '))
        len--;
    /* "stream: " (or "fd[N]: ", "1: stream: " with IDSESSION) before the verdict */
    const char *p = buf;
    size_t n = len;
    const char *colon = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (buf[i] == ':' && buf[i + 1] == ' ')
            colon = buf + i;
    if (colon != NULL) {
        p = colon + 2;
        n = len - (size_t)(p - buf);
    }
    if (n == 2 && memcmp(p, "OK", 2) == 0 && colon != NULL) {
        out->status = OP_CLAMD_CLEAN;
        return 0;
    }
    if (ends_with(p, n, " FOUND") && colon != NULL && n > 6) {
        size_t k = n - 6;
        int ok = 1;
        for (size_t i = 0; i < k; i++)
            if ((unsigned char)p[i] <= ' ' || (unsigned char)p[i] >= 0x7f)
                ok = 0;
        if (ok) {
            out->status = OP_CLAMD_INFECTED;
            copy_printable(out->detail, sizeof out->detail, p, k);
            return 0;
        }
    }
    if (ends_with(buf, len, " ERROR")) {
        /* "INSTREAM size limit exceeded. ERROR", "stream: Can't ... ERROR" */
        copy_printable(out->detail, sizeof out->detail, buf, len - 6);
        return 0;
    }
    copy_printable(out->detail, sizeof out->detail, "malformed answer", 16);
    return -1;
}

/* ---- HTTP/1.1 responses -------------------------------------------- */

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int name_is(const char *s, size_t n, const char *name)
{
    size_t k = strlen(name);
    if (n != k)
        return 0;
    for (size_t i = 0; i < k; i++)
        if (lower((unsigned char)s[i]) != name[i])
            return 0;
    return 1;
}

int op_http_parse_response(const char *buf, size_t len, int eof, size_t max_body,
                           op_http_response_t *r)
{
    memset(r, 0, sizeof *r);
    /* The end of the header: the first CRLFCRLF (or LFLF) within the bound. */
    size_t lim = len < OP_HTTP_MAX_HEADER ? len : OP_HTTP_MAX_HEADER;
    size_t hend = 0, body = 0;
    for (size_t i = 0; i < lim; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n') {
            hend = i + 1;
            body = i + 2;
            break;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            hend = i + 1;
            body = i + 3;
            break;
        }
    }
    if (body == 0) {
        if (len >= OP_HTTP_MAX_HEADER)
            return OP_HTTP_ETOOBIG;
        /* the status line can be judged before the header is complete */
        if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0)
            return OP_HTTP_EMALFORMED;
        return eof ? OP_HTTP_ETRUNCATED : OP_HTTP_MORE;
    }
    /* Status line: HTTP/1.x SP ddd [SP reason] */
    if (hend < 13 || memcmp(buf, "HTTP/1.", 7) != 0 || (buf[7] != '0' && buf[7] != '1') ||
        buf[8] != ' ')
        return OP_HTTP_EMALFORMED;
    for (int i = 9; i < 12; i++)
        if (buf[i] < '0' || buf[i] > '9')
            return OP_HTTP_EMALFORMED;
    if (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')
        return OP_HTTP_EMALFORMED;
    int status = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (status < 200 || status > 599)
        return OP_HTTP_EMALFORMED;
    /* Fields */
    const char *p = memchr(buf, '\n', hend);
    size_t pos = (size_t)(p - buf) + 1;
    long long clen = -1;
    int fields = 0;
    while (pos < hend) {
        const char *line = buf + pos;
        const char *nl = memchr(line, '\n', hend - pos + 1);
        if (nl == NULL)
            return OP_HTTP_EMALFORMED;
        size_t ll = (size_t)(nl - line);
        pos += ll + 1;
        if (ll > 0 && line[ll - 1] == '\r')
            ll--;
        if (ll == 0)
            break;
        if (++fields > OP_HTTP_MAX_FIELDS)
            return OP_HTTP_ETOOBIG;
        if (line[0] == ' ' || line[0] == '\t')
            return OP_HTTP_EMALFORMED; /* obsolete folding */
        const char *colon = memchr(line, ':', ll);
        if (colon == NULL || colon == line)
            return OP_HTTP_EMALFORMED;
        size_t nlen = (size_t)(colon - line);
        for (size_t i = 0; i < nlen; i++)
            if ((unsigned char)line[i] <= ' ' || (unsigned char)line[i] >= 0x7f)
                return OP_HTTP_EMALFORMED;
        const char *v = colon + 1;
        const char *vend = line + ll;
        while (v < vend && (*v == ' ' || *v == '\t'))
            v++;
        while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
            vend--;
        if (name_is(line, nlen, "content-length")) {
            if (v == vend || vend - v > 18)
                return OP_HTTP_EMALFORMED;
            long long x = 0;
            for (const char *q = v; q < vend; q++) {
                if (*q < '0' || *q > '9')
                    return OP_HTTP_EMALFORMED;
                x = x * 10 + (*q - '0');
            }
            if (clen >= 0 && clen != x)
                return OP_HTTP_EMALFORMED;
            clen = x;
        } else if (name_is(line, nlen, "transfer-encoding")) {
            if (!(vend - v == 8 && name_is(v, 8, "identity")))
                return OP_HTTP_EUNSUPPORTED;
        }
    }
    r->status = status;
    r->body_off = body;
    if (clen >= 0) {
        if ((unsigned long long)clen > max_body)
            return OP_HTTP_ETOOBIG;
        if (len - body < (size_t)clen)
            return eof ? OP_HTTP_ETRUNCATED : OP_HTTP_MORE;
        r->body_len = (size_t)clen;
        return OP_HTTP_DONE;
    }
    if (len - body > max_body)
        return OP_HTTP_ETOOBIG;
    if (!eof)
        return OP_HTTP_MORE;
    r->body_len = len - body;
    return OP_HTTP_DONE;
}

int op_http_value_ok(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++) {
        unsigned char c = (unsigned char)s[n];
        if ((c < 0x20 && c != '\t') || c == 0x7f || n >= 998)
            return 0;
    }
    return 1;
}

/* ---- rspamd /checkv2: a small JSON reader --------------------------- */

typedef struct {
    const char *s, *end;
    int depth;
} json_t;

static void ws(json_t *j)
{
    while (j->s < j->end && (*j->s == ' ' || *j->s == '\t' || *j->s == '\n' || *j->s == '\r'))
        j->s++;
}

static int eat(json_t *j, char c)
{
    ws(j);
    if (j->s < j->end && *j->s == c) {
        j->s++;
        return 1;
    }
    return 0;
}

static int hex(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = lower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* A string into out (cap > 0; NULL skips), printable ASCII kept, the rest '?'. */
static int jstring(json_t *j, char *out, size_t cap)
{
    size_t n = 0;
    ws(j);
    if (j->s >= j->end || *j->s != '"')
        return -1;
    j->s++;
    while (j->s < j->end) {
        unsigned char c = (unsigned char)*j->s++;
        int ch;
        if (c == '"') {
            if (out)
                out[n] = '\0';
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c == '\\') {
            if (j->s >= j->end)
                return -1;
            c = (unsigned char)*j->s++;
            switch (c) {
            case '"': case '\\': case '/': ch = c; break;
            case 'b': case 'f': case 'n': case 'r': case 't': ch = ' '; break;
            case 'u':
                if (j->end - j->s < 4)
                    return -1;
                ch = 0;
                for (int i = 0; i < 4; i++) {
                    int h = hex((unsigned char)j->s[i]);
                    if (h < 0)
                        return -1;
                    ch = ch * 16 + h;
                }
                j->s += 4;
                break;
            default:
                return -1;
            }
        } else {
            ch = c;
        }
        if (out && n + 1 < cap)
            out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    return -1;
}

static int jnumber(json_t *j, double *out)
{
    char tmp[64];
    size_t n = 0;
    ws(j);
    const char *start = j->s;
    if (j->s < j->end && *j->s == '-')
        j->s++;
    if (j->s >= j->end || *j->s < '0' || *j->s > '9')
        return -1;
    while (j->s < j->end && ((*j->s >= '0' && *j->s <= '9') || *j->s == '.' || *j->s == 'e' ||
                             *j->s == 'E' || *j->s == '+' || *j->s == '-'))
        j->s++;
    n = (size_t)(j->s - start);
    if (n >= sizeof tmp)
        return -1;
    memcpy(tmp, start, n);
    tmp[n] = '\0';
    char *e;
    double d = strtod(tmp, &e);
    if (*e != '\0')
        return -1;
    if (out)
        *out = d;
    return 0;
}

static int jliteral(json_t *j, const char *word)
{
    size_t k = strlen(word);
    ws(j);
    if ((size_t)(j->end - j->s) < k || memcmp(j->s, word, k) != 0)
        return -1;
    j->s += k;
    return 0;
}

static int jskip(json_t *j);

static int jskip_container(json_t *j, char open, char close)
{
    if (!eat(j, open))
        return -1;
    if (++j->depth > OP_RSPAMD_JSON_DEPTH)
        return -1;
    if (eat(j, close)) {
        j->depth--;
        return 0;
    }
    for (;;) {
        if (open == '{') {
            if (jstring(j, NULL, 0) != 0 || !eat(j, ':'))
                return -1;
        }
        if (jskip(j) != 0)
            return -1;
        if (eat(j, ','))
            continue;
        if (eat(j, close)) {
            j->depth--;
            return 0;
        }
        return -1;
    }
}

static int jskip(json_t *j)
{
    ws(j);
    if (j->s >= j->end)
        return -1;
    switch (*j->s) {
    case '{': return jskip_container(j, '{', '}');
    case '[': return jskip_container(j, '[', ']');
    case '"': return jstring(j, NULL, 0);
    case 't': return jliteral(j, "true");
    case 'f': return jliteral(j, "false");
    case 'n': return jliteral(j, "null");
    default: return jnumber(j, NULL);
    }
}

/* One symbol's object: its "score". */
static int jsymbol(json_t *j, op_rspamd_result_t *out, const char *name)
{
    double score = 0;
    if (!eat(j, '{'))
        return jskip(j);
    if (++j->depth > OP_RSPAMD_JSON_DEPTH)
        return -1;
    if (!eat(j, '}')) {
        for (;;) {
            char key[16];
            if (jstring(j, key, sizeof key) != 0 || !eat(j, ':'))
                return -1;
            if (strcmp(key, "score") == 0) {
                if (jnumber(j, &score) != 0)
                    return -1;
            } else if (jskip(j) != 0) {
                return -1;
            }
            if (eat(j, ','))
                continue;
            if (eat(j, '}'))
                break;
            return -1;
        }
    }
    j->depth--;
    out->symbols_seen++;
    /* Keep the highest scores: insert in order, drop the lowest when full. */
    size_t n = out->nsymbols;
    size_t at = n;
    while (at > 0 && out->symbols[at - 1].score < score)
        at--;
    if (at >= OP_RSPAMD_MAX_SYMBOLS)
        return 0;
    if (n == OP_RSPAMD_MAX_SYMBOLS)
        n--;
    memmove(&out->symbols[at + 1], &out->symbols[at], (n - at) * sizeof out->symbols[0]);
    snprintf(out->symbols[at].name, sizeof out->symbols[at].name, "%s", name);
    out->symbols[at].score = score;
    out->nsymbols = n + 1;
    return 0;
}

static int jsymbols(json_t *j, op_rspamd_result_t *out)
{
    if (!eat(j, '{'))
        return jskip(j); /* null or another form: no symbols */
    if (++j->depth > OP_RSPAMD_JSON_DEPTH)
        return -1;
    if (eat(j, '}')) {
        j->depth--;
        return 0;
    }
    for (;;) {
        char name[64];
        if (jstring(j, name, sizeof name) != 0 || !eat(j, ':'))
            return -1;
        if (jsymbol(j, out, name) != 0)
            return -1;
        if (eat(j, ','))
            continue;
        if (eat(j, '}')) {
            j->depth--;
            return 0;
        }
        return -1;
    }
}

int op_rspamd_parse(const char *json, size_t len, op_rspamd_result_t *out)
{
    memset(out, 0, sizeof *out);
    json_t j = {json, json + len, 0};
    int have_action = 0, have_score = 0;
    if (!eat(&j, '{'))
        return -1;
    j.depth = 1;
    if (!eat(&j, '}')) {
        for (;;) {
            char key[32];
            if (jstring(&j, key, sizeof key) != 0 || !eat(&j, ':'))
                return -1;
            int rc;
            if (strcmp(key, "action") == 0) {
                rc = jstring(&j, out->action, sizeof out->action);
                have_action = rc == 0;
            } else if (strcmp(key, "score") == 0) {
                rc = jnumber(&j, &out->score);
                have_score = rc == 0;
            } else if (strcmp(key, "required_score") == 0) {
                rc = jnumber(&j, &out->required);
            } else if (strcmp(key, "is_skipped") == 0) {
                ws(&j);
                out->skipped = j.s < j.end && *j.s == 't';
                rc = jskip(&j);
            } else if (strcmp(key, "symbols") == 0) {
                rc = jsymbols(&j, out);
            } else {
                rc = jskip(&j);
            }
            if (rc != 0)
                return -1;
            if (eat(&j, ','))
                continue;
            if (eat(&j, '}'))
                break;
            return -1;
        }
    }
    ws(&j);
    if (j.s != j.end)
        return -1;
    return have_action && have_score ? 0 : -1;
}
