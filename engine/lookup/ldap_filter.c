#include "lookup/ldap_filter.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* 1: the byte is copied as it is, 0: it becomes \XX.  Printable ASCII
 * except the filter's own syntax ( ) * \ is copied; NUL, the other control
 * bytes, DEL and every byte >= 0x80 are escaped. */
static const unsigned char plain_byte[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1, /* 0x20: ( ) * */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, /* 0x50: \ */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* 0x60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, /* 0x70: DEL */
};

int op_ldap_filter_escape(const char *v, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (plain_byte[c]) {
            if (o + 1 >= outlen)
                return -1;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen)
                return -1;
            out[o++] = '\\';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    if (o >= outlen)
        return -1;
    out[o] = '\0';
    return (int)o;
}

/* The reference (ldap_filter.h): expands tmpl byte by byte, checking as it
 * goes; gives the message of every refusal. */
int op__ldap_filter_expand_ref(const char *tmpl, const op_ldap_arg_t *args, size_t nargs,
                               char *out, size_t outlen, char *err, size_t errlen)
{
    if (nargs > OP_LDAP_FILTER_ARGS) {
        snprintf(err, errlen, "at most %d filter arguments", OP_LDAP_FILTER_ARGS);
        return -1;
    }
    int used[OP_LDAP_FILTER_ARGS] = {0};
    size_t next = 0, o = 0;
    int depth = 0;
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p != '%') {
            if (*p == '(')
                depth++;
            if (*p == ')' && --depth < 0) {
                snprintf(err, errlen, "unbalanced ')' in filter template");
                return -1;
            }
            if (o + 1 >= outlen)
                goto too_long;
            out[o++] = *p;
            continue;
        }
        p++;
        size_t idx;
        if (*p == '%') {
            if (o + 1 >= outlen)
                goto too_long;
            out[o++] = '%';
            continue;
        } else if (*p == 's') {
            idx = next++;
        } else if (*p >= '1' && *p <= '9') {
            idx = (size_t)(*p - '1');
        } else {
            snprintf(err, errlen, "bad placeholder '%%%.1s' in filter template (use %%s, %%1..%%9 or %%%%)", p);
            return -1;
        }
        if (idx >= nargs) {
            snprintf(err, errlen, "filter template wants argument %zu, %zu given", idx + 1, nargs);
            return -1;
        }
        used[idx] = 1;
        int n = op_ldap_filter_escape(args[idx].data, args[idx].len, out + o, outlen - o);
        if (n < 0)
            goto too_long;
        o += (size_t)n;
    }
    if (depth != 0) {
        snprintf(err, errlen, "unbalanced '(' in filter template");
        return -1;
    }
    for (size_t i = 0; i < nargs; i++) {
        if (!used[i]) {
            snprintf(err, errlen, "filter argument %zu is not used by the template", i + 1);
            return -1;
        }
    }
    if (o == 0) {
        snprintf(err, errlen, "empty filter");
        return -1;
    }
    out[o] = '\0';
    return (int)o;

too_long:
    snprintf(err, errlen, "filter longer than %zu bytes", outlen - 1);
    return -1;
}

int op_ldap_filter_compile(const char *tmpl, op_ldap_filter_t *f)
{
    if (strnlen(tmpl, OP_LDAP_FILTER_TMPL_MAX + 1) > OP_LDAP_FILTER_TMPL_MAX)
        return -1; /* then lit and pieces, sized for that, may not do */
    size_t lit = 0, np = 0, run = 0, next = 0;
    int depth = 0;
    f->used = 0;
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p != '%') {
            if (*p == '(')
                depth++;
            if (*p == ')' && --depth < 0)
                return -1;
            f->lit[lit++] = *p;
            run++;
            continue;
        }
        p++;
        size_t idx;
        if (*p == '%') {
            f->lit[lit++] = '%';
            run++;
            continue;
        } else if (*p == 's') {
            idx = next++;
        } else if (*p >= '1' && *p <= '9') {
            idx = (size_t)(*p - '1');
        } else {
            return -1;
        }
        if (idx >= OP_LDAP_FILTER_ARGS)
            return -1; /* more %s than arguments can be given */
        f->pieces[np].lit_len = (unsigned short)run;
        f->pieces[np].arg = (signed char)idx;
        np++;
        run = 0;
        f->used |= 1u << idx;
    }
    if (depth != 0)
        return -1;
    f->pieces[np].lit_len = (unsigned short)run;
    f->pieces[np].arg = -1;
    f->npieces = (unsigned)np + 1;
    return 0;
}

int op_ldap_filter_fill(const op_ldap_filter_t *f, const op_ldap_arg_t *args, size_t nargs,
                        char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    /* Every placeholder names a given argument and every argument is used:
     * the placeholders' set is exactly 1..nargs. */
    if (nargs > OP_LDAP_FILTER_ARGS || f->used != (1u << nargs) - 1)
        return -1;
    const char *lit = f->lit;
    size_t o = 0;
    for (unsigned i = 0; i < f->npieces; i++) {
        size_t n = f->pieces[i].lit_len;
        if (n >= outlen - o)
            return -1;
        memcpy(out + o, lit, n);
        lit += n;
        o += n;
        int a = f->pieces[i].arg;
        if (a < 0)
            break;
        const unsigned char *v = (const unsigned char *)args[a].data;
        size_t len = args[a].len;
        /* At most 3 bytes per byte: check the room once when it surely
         * fits, else per byte (then the result does not fit, or barely). */
        if (len < (outlen - o) / 3) {
            for (size_t j = 0; j < len; j++) {
                unsigned char c = v[j];
                if (plain_byte[c]) {
                    out[o++] = (char)c;
                } else {
                    out[o] = '\\';
                    out[o + 1] = hex[c >> 4];
                    out[o + 2] = hex[c & 15];
                    o += 3;
                }
            }
        } else {
            int e = op_ldap_filter_escape(args[a].data, len, out + o, outlen - o);
            if (e < 0)
                return -1;
            o += (size_t)e;
        }
    }
    if (o == 0 || o >= outlen)
        return -1;
    out[o] = '\0';
    return (int)o;
}

/* This thread's last templates, compiled (Lua runs on the loop's thread, so
 * one memo serves it; another thread has its own).  Replaced round robin:
 * a policy has a handful of templates, all from its configuration. */
#define MEMO_SIZE 8
static _Thread_local struct {
    size_t tmpl_len;
    char tmpl[OP_LDAP_FILTER_TMPL_MAX + 1];
    op_ldap_filter_t f;
} memo[MEMO_SIZE];
static _Thread_local unsigned memo_used, memo_next;

static const op_ldap_filter_t *compiled(const char *tmpl)
{
    size_t len = strnlen(tmpl, OP_LDAP_FILTER_TMPL_MAX + 1);
    if (len > OP_LDAP_FILTER_TMPL_MAX)
        return NULL;
    for (unsigned i = 0; i < memo_used; i++)
        if (memo[i].tmpl_len == len && memcmp(memo[i].tmpl, tmpl, len) == 0)
            return &memo[i].f;
    unsigned i = memo_next;
    memo_next = (memo_next + 1) % MEMO_SIZE;
    if (memo_used < MEMO_SIZE)
        memo_used++;
    if (op_ldap_filter_compile(tmpl, &memo[i].f) < 0) {
        memo[i].tmpl_len = SIZE_MAX; /* matches no template */
        return NULL;
    }
    memcpy(memo[i].tmpl, tmpl, len + 1);
    memo[i].tmpl_len = len;
    return &memo[i].f;
}

int op_ldap_filter_expand(const char *tmpl, const op_ldap_arg_t *args, size_t nargs, char *out,
                          size_t outlen, char *err, size_t errlen)
{
    const op_ldap_filter_t *f = compiled(tmpl);
    if (f != NULL) {
        int n = op_ldap_filter_fill(f, args, nargs, out, outlen);
        if (n >= 0)
            return n;
    }
    return op__ldap_filter_expand_ref(tmpl, args, nargs, out, outlen, err, errlen);
}
