#include "lookup/ldap_filter.h"

#include <stdio.h>
#include <string.h>

/* Bytes left as they are: printable ASCII except the filter's own syntax. */
static int plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '*' && c != '(' && c != ')' && c != '\\';
}

int op_ldap_filter_escape(const char *v, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        if (plain(c)) {
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

int op_ldap_filter_expand(const char *tmpl, const op_ldap_arg_t *args, size_t nargs, char *out,
                          size_t outlen, char *err, size_t errlen)
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
