/* Keys whose value is a template (a row's .tmpl, config_schema.h): LDAP
 * filter templates and DN patterns.  A template that cannot be expanded
 * fails every request that uses it (each answers its default action), so
 * its mistakes are found when the file is read, at the key's line: the
 * placeholders must be those the caller fills, every argument must be
 * used, and a filter must be an RFC 4515 filter once filled.
 *
 * Placeholders (lookup/ldap_filter.h expands them): %s the next argument,
 * %1..%9 argument N, %% a literal %, and %t the tenant where the row
 * allows it.  In a filter they stand for assertion values only: a value
 * is escaped when it is filled in, so it can never become an attribute or
 * a parenthesis. */
#include "config/config_schema.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const char *start, *p;
    const op_conf_template_t *t;
    unsigned next;           /* the argument the next %s stands for */
    unsigned used;           /* bit i: argument i+1 appears */
    int tenant;              /* %t appears */
    char *msg;
    size_t msglen;
} scan_t;

static int bad(scan_t *s, const char *fmt, const char *what)
{
    size_t at = (size_t)(s->p - s->start);
    char m[160];
    snprintf(m, sizeof m, fmt, what);
    snprintf(s->msg, s->msglen, "%s at offset %zu%s%.24s%s", m, at, *s->p ? " ('" : "",
             s->p, *s->p ? (strlen(s->p) > 24 ? "...')" : "')") : " (the end)");
    return -1;
}

/* s->p is at '%': reads one placeholder. */
static int placeholder(scan_t *s)
{
    char c = s->p[1];
    unsigned idx;
    if (c == '%') {
        s->p += 2;
        return 0;
    }
    if (c == 't' && s->t->tenant != OP_TMPL_NO_TENANT) {
        s->tenant = 1;
        s->p += 2;
        return 0;
    }
    if (c == 's' && s->t->args > 0)
        idx = s->next++;
    else if (c >= '1' && c <= '9' && s->t->args > 0)
        idx = (unsigned)(c - '1');
    else {
        char m[128];
        snprintf(m, sizeof m, "unknown placeholder '%%%c' (this key takes %s%s%%%%)", c ? c : ' ',
                 s->t->args == 0 ? "" : s->t->args == 1 ? "%s or %1, " : "%s, %1..%N, ",
                 s->t->tenant != OP_TMPL_NO_TENANT ? "%t, " : "");
        return bad(s, "%s", m);
    }
    if (idx >= s->t->args) {
        char m[96];
        snprintf(m, sizeof m, "placeholder '%%%c' names argument %u; this key is given %u", c,
                 idx + 1, s->t->args);
        return bad(s, "%s", m);
    }
    s->used |= 1u << idx;
    s->p += 2;
    return 0;
}

static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int is_keychar(char c) { return is_alpha(c) || is_digit(c) || c == '-'; }

/* RFC 4512 oid: a keystring or a numericoid. */
static int oid(scan_t *s)
{
    if (is_alpha(*s->p)) {
        while (is_keychar(*s->p))
            s->p++;
        return 0;
    }
    if (!is_digit(*s->p))
        return *s->p == '%' ? bad(s, "%s", "a placeholder stands for a value, not an attribute name")
                            : bad(s, "%s", "expected an attribute name");
    for (;;) {
        while (is_digit(*s->p))
            s->p++;
        if (*s->p != '.')
            return 0;
        s->p++;
        if (!is_digit(*s->p))
            return bad(s, "%s", "bad numeric OID");
    }
}

/* assertionvalue up to the closing ')': escapes are \XX; '*' only in an
 * equality match (a substring or presence filter). */
static int value(scan_t *s, int star_ok)
{
    while (*s->p != ')') {
        switch (*s->p) {
        case '\0':
            return bad(s, "%s", "unbalanced '(': missing ')'");
        case '(':
            return bad(s, "%s", "'(' inside a value must be written \\28");
        case '\\':
            if (!is_hex(s->p[1]) || !is_hex(s->p[2]))
                return bad(s, "%s", "'\\' in a value must start an escape of two hex digits, e.g. \\2a");
            s->p += 3;
            break;
        case '*':
            if (!star_ok)
                return bad(s, "%s", "'*' is only allowed after '=' (write \\2a for a literal *)");
            s->p++;
            break;
        case '%':
            if (placeholder(s) < 0)
                return -1;
            break;
        default:
            s->p++;
        }
    }
    return 0;
}

/* item = simple / present / substring / extensible (RFC 4515 section 3) */
static int item(scan_t *s)
{
    if (*s->p != ':') {
        if (oid(s) < 0)
            return -1;
        while (*s->p == ';') { /* options */
            s->p++;
            if (!is_keychar(*s->p))
                return bad(s, "%s", "bad attribute option");
            while (is_keychar(*s->p))
                s->p++;
        }
    }
    if (*s->p == '=') {
        s->p++;
        return value(s, 1);
    }
    if ((*s->p == '~' || *s->p == '>' || *s->p == '<') && s->p[1] == '=') {
        s->p += 2;
        return value(s, 0);
    }
    if (*s->p != ':')
        return bad(s, "%s", "expected =, ~=, >=, <= or := after the attribute");
    /* extensible: [":dn"] [":" matchingrule] ":=" value */
    if (strncmp(s->p, ":dn", 3) == 0 && !is_keychar(s->p[3]))
        s->p += 3;
    if (*s->p == ':' && s->p[1] != '=') {
        s->p++;
        if (oid(s) < 0)
            return -1;
    }
    if (s->p[0] != ':' || s->p[1] != '=')
        return bad(s, "%s", "bad extensible match (attr:dn:rule:=value)");
    s->p += 2;
    return value(s, 0);
}

/* filter = "(" ( "&" 1*filter / "|" 1*filter / "!" filter / item ) ")" */
static int filter(scan_t *s, int depth)
{
    if (depth > 32)
        return bad(s, "%s", "filter nested too deeply");
    if (*s->p != '(')
        return *s->p == ')' ? bad(s, "%s", "unbalanced ')'")
                            : bad(s, "%s", "expected '(' (a filter is (attr=value), (&...), (|...) or (!...))");
    s->p++;
    if (*s->p == '&' || *s->p == '|' || *s->p == '!') {
        char op = *s->p++;
        int n = 0;
        for (; *s->p == '('; n++)
            if (filter(s, depth + 1) < 0)
                return -1;
        if (n == 0 || (op == '!' && n > 1)) {
            char m[64];
            snprintf(m, sizeof m, "'%c' takes %s filter", op, op == '!' ? "exactly one" : "at least one");
            return bad(s, "%s", m);
        }
    } else if (item(s) < 0) {
        return -1;
    }
    if (*s->p != ')')
        return bad(s, "%s", *s->p ? "expected ')'" : "unbalanced '(': missing ')'");
    s->p++;
    return 0;
}

int op__config_template_check(const op_conf_template_t *t, const char *v, char *msg, size_t msglen)
{
    scan_t s = {.start = v, .p = v, .t = t, .msg = msg, .msglen = msglen};
    if (t->filter) {
        if (filter(&s, 0) < 0)
            return -1;
        if (*s.p != '\0')
            return bad(&s, "%s", "text after the filter's closing ')' (combine filters with (&...) or (|...))");
    } else {
        while (*s.p != '\0')
            if (*s.p == '%' ? placeholder(&s) < 0 : (s.p++, 0))
                return -1;
    }
    for (unsigned i = 0; i < t->args; i++)
        if (!(s.used & (1u << i))) {
            snprintf(msg, msglen, "argument %u is not used: write %s where the value goes", i + 1,
                     t->args == 1 ? "%s (or %1)" : "%s or %N");
            return -1;
        }
    if (t->tenant == OP_TMPL_NEEDS_TENANT && !s.tenant) {
        snprintf(msg, msglen, "has no %%t: the tenant must be part of it, e.g. cn=tenant-%%t-apps,ou=groups,...");
        return -1;
    }
    return 0;
}
