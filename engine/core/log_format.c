/* The renderings of a log line over buffers (log_format.h). */
#include "core/log_format.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static const char hex[] = "0123456789abcdef";

/* Appends what snprintf makes, or nothing if it does not fit. */
static size_t put(char *out, size_t at, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static size_t put(char *out, size_t at, size_t cap, const char *fmt, ...)
{
    if (at >= cap)
        return at;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + at, cap - at, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap - at) {
        out[at] = '\0';
        return at;
    }
    return at + (size_t)n;
}

size_t op_log_fmt_rfc3339(char *out, size_t at, size_t cap, const struct tm *tm, long nsec)
{
    long off = tm->tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    return put(out, at, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03ld%c%02ld:%02ld",
               tm->tm_year + 1900, tm->tm_mon + 1, tm->tm_mday, tm->tm_hour, tm->tm_min,
               tm->tm_sec, nsec / 1000000, sign, off / 60, off % 60);
}

size_t op_log_fmt_syslog_header(char *out, size_t at, size_t cap, int facility, int level,
                                const struct tm *tm, const char *ident, long pid)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    return put(out, at, cap, "<%d>%s %2d %02d:%02d:%02d %s[%ld]: ", facility | (level & 7),
               months[tm->tm_mon % 12], tm->tm_mday, tm->tm_hour, tm->tm_min, tm->tm_sec,
               ident, pid);
}

size_t op_log_fmt_kv(char *out, size_t at, size_t cap, const op_log_field_t *f)
{
    size_t len = f->len, max = f->max ? f->max : OP_LOG_FIELD_MAX;
    if (len > max)
        len = max;
    const char *v = f->value;
    int quote = !(f->flags & OP_LF_NUM) &&
                ((f->flags & OP_LF_QUOTE) || len == 0 || memchr(v, ' ', len) ||
                 memchr(v, '"', len) || memchr(v, '=', len));
    for (size_t i = 0; !quote && i < len; i++)
        quote = (unsigned char)v[i] < 0x20 || v[i] == 0x7f;
    size_t start = at;
    at = put(out, at, cap, " %s=%s", f->key, quote ? "\"" : "");
    if (at == start)
        return at;
    /* room for the widest escape (\xNN), the closing quote and the NUL */
    for (size_t i = 0; i < len && at + 6 < cap; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c < 0x20 || c == 0x7f) {
            out[at++] = '\\';
            out[at++] = 'x';
            out[at++] = hex[c >> 4];
            out[at++] = hex[c & 15];
            continue;
        }
        if (c == '"' || c == '\\')
            out[at++] = '\\';
        out[at++] = (char)c;
    }
    if (quote && at + 1 < cap)
        out[at++] = '"';
    out[at] = '\0';
    return at;
}

/* The length of the valid UTF-8 sequence at s (RFC 3629: no overlong
 * forms, no surrogates, at most U+10FFFF), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        need = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        need = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        if (c == 0xf4)
            hi = 0x8f; /* past U+10FFFF */
    } else
        return 0;
    if (n < need || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < need; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return need;
}

size_t op_log_fmt_json_str(char *out, size_t at, size_t cap, const char *str, size_t len)
{
    const unsigned char *s = (const unsigned char *)str;
    if (at + 3 > cap)
        return at;
    out[at++] = '"';
    /* stop with room for the widest escape (\u00XX, 6 bytes), '"', NUL */
    for (size_t i = 0; i < len && at + 8 < cap;) {
        unsigned char c = s[i];
        if (c >= 0x80) {
            size_t n = utf8_len(s + i, len - i);
            if (n == 0) {
                memcpy(out + at, "\\ufffd", 6);
                at += 6;
                i++;
            } else {
                memcpy(out + at, s + i, n);
                at += n;
                i += n;
            }
            continue;
        }
        i++;
        const char *esc = NULL;
        switch (c) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        }
        if (esc != NULL) {
            memcpy(out + at, esc, 2);
            at += 2;
        } else if (c < 0x20 || c == 0x7f) {
            memcpy(out + at, "\\u00", 4);
            out[at + 4] = hex[c >> 4];
            out[at + 5] = hex[c & 15];
            at += 6;
        } else {
            out[at++] = (char)c;
        }
    }
    out[at++] = '"';
    out[at] = '\0';
    return at;
}

size_t op_log_fmt_json_field(char *out, size_t at, size_t cap, const op_log_field_t *f)
{
    size_t len = f->len, max = f->max ? f->max : OP_LOG_FIELD_MAX;
    if (len > max)
        len = max;
    size_t start = at;
    at = put(out, at, cap, ",\"%s\":", f->key);
    if (at == start)
        return at;
    if ((f->flags & OP_LF_NUM) && len > 0 && at + len + 1 < cap) {
        memcpy(out + at, f->value, len);
        at += len;
        out[at] = '\0';
        return at;
    }
    size_t end = op_log_fmt_json_str(out, at, cap, f->value, len);
    if (end == at) { /* no room even for "": take the key back */
        out[start] = '\0';
        return start;
    }
    return end;
}

size_t op_log_fmt_journal(char *out, size_t at, size_t cap, const char *key, const char *v,
                          size_t len)
{
    size_t klen = strlen(key);
    if (at + klen + 1 + 8 + len + 1 > cap)
        return at;
    for (size_t i = 0; i < klen; i++) {
        char c = key[i];
        out[at++] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
    }
    out[at++] = '\n';
    uint64_t n = len;
    for (int i = 0; i < 8; i++)
        out[at++] = (char)(n >> (8 * i) & 0xff);
    memcpy(out + at, v, len);
    at += len;
    out[at++] = '\n';
    return at;
}
