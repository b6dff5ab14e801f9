/* The metrics endpoint's HTTP codec (metrics_http.h). */
#include "metrics/metrics_http.h"

#include <stdio.h>
#include <string.h>

static const char *find_end(const char *buf, size_t len, size_t *head_len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (i + 1 < len && buf[i + 1] == '\n') {
            *head_len = i + 2;
            return buf + i;
        }
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
            *head_len = i + 3;
            return buf + i;
        }
    }
    return NULL;
}

static int token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int op_http_parse(const char *buf, size_t len)
{
    size_t head_len;
    if (find_end(buf, len, &head_len) == NULL)
        return len >= OP_HTTP_MAX_HEAD ? OP_HTTP_BAD : OP_HTTP_MORE;
    if (head_len > OP_HTTP_MAX_HEAD)
        return OP_HTTP_BAD;
    /* Request line: METHOD SP TARGET SP HTTP/1.x (CR) LF */
    const char *eol = memchr(buf, '\n', head_len);
    size_t line = (size_t)(eol - buf);
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    size_t m = 0;
    while (m < line && token_char(buf[m]))
        m++;
    if (m == 0 || m >= line || buf[m] != ' ')
        return OP_HTTP_BAD;
    size_t t0 = m + 1, t = t0;
    while (t < line && buf[t] != ' ') {
        if ((unsigned char)buf[t] <= 0x20 || buf[t] == 0x7f)
            return OP_HTTP_BAD;
        t++;
    }
    if (t == t0 || t >= line || line - (t + 1) != 8 || memcmp(buf + t + 1, "HTTP/1.", 7) != 0 ||
        (buf[t + 8] != '0' && buf[t + 8] != '1'))
        return OP_HTTP_BAD;
    /* Each header line has a name and a colon. */
    for (const char *p = eol + 1; p < buf + head_len;) {
        const char *e = memchr(p, '\n', (size_t)(buf + head_len - p));
        size_t n = (size_t)(e - p);
        if (n > 0 && p[n - 1] == '\r')
            n--;
        if (n == 0)
            break;
        const char *colon = memchr(p, ':', n);
        if (colon == NULL || colon == p)
            return OP_HTTP_BAD;
        for (const char *q = p; q < colon; q++)
            if (!token_char(*q))
                return OP_HTTP_BAD;
        p = e + 1;
    }
    if (m != 3 || memcmp(buf, "GET", 3) != 0)
        return OP_HTTP_METHOD;
    size_t tl = t - t0;
    const char *target = buf + t0;
    /* /metrics, with or without a query string (Prometheus adds none). */
    if ((tl == 8 && memcmp(target, "/metrics", 8) == 0) ||
        (tl > 8 && memcmp(target, "/metrics?", 9) == 0))
        return OP_HTTP_OK;
    return OP_HTTP_NOT_FOUND;
}

const char *op_http_error_body(int code)
{
    switch (code) {
    case OP_HTTP_NOT_FOUND:
        return "not found: the metrics are at /metrics\n";
    case OP_HTTP_METHOD:
        return "method not allowed: only GET\n";
    default:
        return "bad request\n";
    }
}

size_t op_http_head(char *out, size_t cap, int code, size_t body_len)
{
    const char *reason = code == 200   ? "OK"
                         : code == 404 ? "Not Found"
                         : code == 405 ? "Method Not Allowed"
                                       : "Bad Request";
    int n = snprintf(out, cap,
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     code, reason, code == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain",
                     body_len, code == 405 ? "Allow: GET\r\n" : "");
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}
