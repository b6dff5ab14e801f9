#include "proto/milter_verdict.h"

#include "proto/proto_milter.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Does the word at a (n bytes) equal w, ignoring case? */
static int word_is(const char *a, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(a, w, n) == 0;
}

static int is_status(const char *s, size_t n, char cls)
{
    /* X.Y.Z with X the class, Y 1-3 digits, Z 1-3 digits */
    if (n < 5 || n > 9 || s[0] != cls || s[1] != '.')
        return 0;
    size_t i = 2, d = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++, d++;
    if (d < 1 || d > 3 || i >= n || s[i] != '.')
        return 0;
    i++;
    d = 0;
    while (i < n && isdigit((unsigned char)s[i]))
        i++, d++;
    return d >= 1 && d <= 3 && i == n;
}

/* Fills the reply code from "[status] [text]" in rest. */
static void replycode(op_milter_verdict_t *v, int code, const char *def_status, const char *rest,
                      size_t n)
{
    char cls = (char)('0' + code / 100);
    v->reply = OP_MILTER_R_REPLYCODE;
    v->code = code;
    const char *sp = memchr(rest, ' ', n);
    size_t wl = sp ? (size_t)(sp - rest) : n;
    if (wl > 0 && is_status(rest, wl, cls)) {
        snprintf(v->status, sizeof v->status, "%.*s", (int)wl, rest);
        rest += wl;
        n -= wl;
        while (n > 0 && *rest == ' ')
            rest++, n--;
    } else {
        snprintf(v->status, sizeof v->status, "%s", def_status);
    }
    v->text = rest;
    v->text_len = n;
}

int op_milter_verdict(const char *action, size_t len, op_milter_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    v->reply = OP_MILTER_R_CONTINUE;
    const char *sp = memchr(action, ' ', len);
    size_t wl = sp ? (size_t)(sp - action) : len;
    const char *rest = sp ? sp + 1 : action + len;
    size_t rn = sp ? len - wl - 1 : 0;

    if (word_is(action, wl, "DUNNO") || word_is(action, wl, "WARN") || word_is(action, wl, "INFO"))
        return 0;
    if (word_is(action, wl, "OK")) {
        v->reply = OP_MILTER_R_ACCEPT;
        return 0;
    }
    if (word_is(action, wl, "REJECT")) {
        replycode(v, 550, "5.7.1", rest, rn);
        return 0;
    }
    if (word_is(action, wl, "DEFER") || word_is(action, wl, "DEFER_IF_PERMIT") ||
        word_is(action, wl, "DEFER_IF_REJECT")) {
        replycode(v, 451, "4.7.1", rest, rn);
        return 0;
    }
    if (wl == 3 && (action[0] == '4' || action[0] == '5') && isdigit((unsigned char)action[1]) &&
        isdigit((unsigned char)action[2])) {
        int code = (action[0] - '0') * 100 + (action[1] - '0') * 10 + (action[2] - '0');
        replycode(v, code, action[0] == '4' ? "4.7.1" : "5.7.1", rest, rn);
        return 0;
    }
    if (word_is(action, wl, "DISCARD")) {
        v->reply = OP_MILTER_R_DISCARD;
        return 0;
    }
    if (word_is(action, wl, "HOLD")) {
        v->quarantine = rest;
        v->quarantine_len = rn;
        return 0;
    }
    if (word_is(action, wl, "PREPEND")) {
        v->header = rest;
        v->header_len = rn;
        return 0;
    }
    if (word_is(action, wl, "REDIRECT") || word_is(action, wl, "BCC") ||
        word_is(action, wl, "FILTER")) {
        v->ignored = word_is(action, wl, "REDIRECT") ? "REDIRECT"
                     : word_is(action, wl, "BCC")    ? "BCC"
                                                     : "FILTER";
        return 0;
    }
    replycode(v, 451, "4.3.5", "policy answer is not a valid action", 35);
    return -1;
}
