/* The values of outpost.conf: a scalar or list from the file (or a
 * default from a schema row) checked against its key's type and range and
 * stored in the key's field.  Numbers, durations, modes and booleans are
 * parsed by hand so that nothing but the documented forms is accepted. */
#include "config/config_schema.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define fail op__config_fail

const char *const op__config_type_names[] = {
    [T_STRING] = "string",   [T_PATH] = "path",         [T_BOOL] = "bool",
    [T_INTEGER] = "integer", [T_DURATION] = "duration", [T_MODE] = "octal mode",
    [T_ENUM] = "enum",       [T_LIST] = "list of strings",
};

/* dir is a realpath(), so none of its components is a symlink and a ".."
 * at the start of value is its lexical parent; a ".." after a component of
 * value itself is left to the kernel, since that component may be a link. */
char *op__config_abs_path(const char *dir, const char *value)
{
    if (value[0] == '/')
        return op_strdup(value);
    char *out = op_malloc(strlen(dir) + strlen(value) + 2);
    size_t n = strlen(dir);
    memcpy(out, dir, n);
    if (n == 1) /* "/" */
        n = 0;
    int inside = 0;
    for (const char *p = value; *p != '\0';) {
        size_t len = strcspn(p, "/");
        if (len == 0 || (len == 1 && p[0] == '.')) {
            /* "" or ".": nothing */
        } else if (len == 2 && p[0] == '.' && p[1] == '.' && !inside) {
            while (n > 0 && out[n - 1] != '/')
                n--;
            if (n > 0)
                n--;
        } else {
            inside = 1;
            out[n++] = '/';
            memcpy(out + n, p, len);
            n += len;
        }
        p += len + (p[len] == '/');
    }
    if (n == 0)
        out[n++] = '/';
    out[n] = '\0';
    return out;
}

static int parse_bool(const char *v, int *out)
{
    static const char *const yes[] = {"yes", "true", "on"}, *const no[] = {"no", "false", "off"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(v, yes[i]) == 0)
            return *out = 1, 0;
        if (strcasecmp(v, no[i]) == 0)
            return *out = 0, 0;
    }
    return -1;
}

typedef struct {
    const char *suffix;
    double factor;
} unit_t;

static const unit_t size_units[] = {{"", 1}, {"k", 1024}, {"K", 1024}, {"M", 1048576}, {NULL, 0}};
static const unit_t time_units[] = {{"", 1}, {"ms", 0.001}, {"s", 1}, {"m", 60}, {"h", 3600},
                                    {"d", 86400}, {NULL, 0}};

/* Digits, a fraction when allowed, then one of units.  Parsed by hand, not
 * with strtod, which would also take "0x10", "1e3", "inf" and " 5". */
static int parse_number(const char *v, const unit_t *units, int fraction, double *out)
{
    const char *p = v;
    double n = 0, scale = 1;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++)
        if ((n = n * 10 + (*p - '0')) > 1e12) /* far beyond any range, still exact */
            return -1;
    if (*p == '.' && fraction) {
        if (*++p < '0' || *p > '9')
            return -1;
        for (; *p >= '0' && *p <= '9'; p++)
            n += (*p - '0') * (scale /= 10);
    }
    for (; units->suffix != NULL; units++)
        if (strcmp(p, units->suffix) == 0)
            return *out = n * units->factor, 0;
    return -1;
}

static int parse_mode(const char *v, int *out)
{
    size_t n = strlen(v);
    if (n == 0 || n > 5 || strspn(v, "01234567") != n)
        return -1;
    long m = strtol(v, NULL, 8);
    if (m > 07777)
        return -1;
    *out = (int)m;
    return 0;
}

/* The index of v in "a|b|c", or -1. */
static int enum_lookup(const char *values, const char *v)
{
    size_t len = strlen(v);
    int i = 0;
    for (const char *p = values; *p != '\0'; i++) {
        size_t n = strcspn(p, "|");
        if (n == len && strncmp(p, v, n) == 0)
            return i;
        p += n + (p[n] == '|');
    }
    return -1;
}

const char *op__config_enum_list(const char *values, char *buf, size_t len)
{
    size_t o = 0;
    for (const char *p = values; *p != '\0' && o + 3 < len; p++) {
        if (*p == '|') {
            buf[o++] = ',';
            buf[o++] = ' ';
        } else {
            buf[o++] = *p;
        }
    }
    buf[o] = '\0';
    return buf;
}

static int check_range(ctx_t *c, const key_def_t *k, const op_conf_node_t *at, const char *where,
                       const char *v, double x)
{
    const char *unit = k->type == T_DURATION ? "s" : "";
    int low = (k->flags & F_ABOVE_LO) ? x <= k->lo : x < k->lo;
    if (low || (k->hi > 0 && x > k->hi)) {
        char hi[64] = "";
        if (k->hi > 0)
            snprintf(hi, sizeof hi, " and at most %.10g%s", k->hi, unit);
        return fail(c, at, where, "%s %s is out of range: it must be %s %.10g%s%s", k->key, v,
                    (k->flags & F_ABOVE_LO) ? "more than" : "at least", k->lo, unit, hi);
    }
    return 0;
}

/* Converts one scalar into the field of obj that k describes. */
int op__config_convert_scalar(ctx_t *c, const op_conf_section_t *sec, const key_def_t *k,
                              const op_conf_node_t *at, const char *where, const char *v, void *obj)
{
    char *field = op__config_field(sec, k, obj);
    char buf[256];
    double x;

    if (v[0] == '\0' && ((k->flags & F_NONEMPTY) || k->type == T_PATH))
        return fail(c, at, where, "%s must not be empty", k->key);
    switch (k->type) {
    case T_STRING:
        if ((k->flags & F_NAME) && !op__config_valid_name(v))
            return fail(c, at, where, "%s: bad name '%s' (letters, digits, '.', '_', '-')", k->key, v);
        /* Empty is a template key's "none" (e.g. directory { tenant_group }). */
        if (k->tmpl != NULL && v[0] != '\0' && op__config_template_check(k->tmpl, v, buf, sizeof buf) < 0)
            return fail(c, at, where, "%s: %s", k->key, buf);
        *(char **)field = op_strdup(v);
        break;
    case T_PATH:
        *(char **)field = op__config_abs_path(c->cfg->dir, v);
        break;
    case T_BOOL:
        if (parse_bool(v, (int *)field) < 0)
            return fail(c, at, where, "%s: bad boolean '%s' (use yes or no; also true/false, on/off)",
                        k->key, v);
        break;
    case T_INTEGER:
    case T_DURATION:
        if (k->type == T_INTEGER ? parse_number(v, size_units, 0, &x) : parse_number(v, time_units, 1, &x))
            return fail(c, at, where, "%s: bad %s '%s' (%s)", k->key, op__config_type_names[k->type], v,
                        k->type == T_INTEGER ? "digits with an optional k or M suffix, e.g. 64k"
                                             : "a number with an optional unit ms, s, m, h or d, e.g. 10s");
        if (check_range(c, k, at, where, v, x) < 0)
            return -1;
        if (k->type == T_INTEGER && (k->flags & F_INT))
            *(int *)field = (int)x;
        else if (k->type == T_INTEGER)
            *(size_t *)field = (size_t)x;
        else
            *(double *)field = x;
        break;
    case T_MODE:
        if (parse_mode(v, (int *)field) < 0)
            return fail(c, at, where, "%s: bad mode '%s' (octal permission bits, e.g. 0660)", k->key, v);
        break;
    case T_ENUM:
        if ((*(int *)field = enum_lookup(k->values, v)) < 0)
            return fail(c, at, where, "%s: unknown value '%s' (allowed: %s)", k->key, v,
                        op__config_enum_list(k->values, buf, sizeof buf));
        if (k->code != NULL)
            *(int *)field = k->code(v);
        break;
    case T_LIST:
        OP_ASSERT(0);
    }
    return k->check ? k->check(c, at, where, obj) : 0;
}

int op__config_convert_list(ctx_t *c, const op_conf_section_t *sec, const key_def_t *k,
                            const op_conf_node_t *list, const char *where, void *obj)
{
    if (list->nchildren == 0 && k->def != NULL) {
        op__config_convert_default_list(sec, k, obj);
        return 0;
    }
    char **items = op_calloc(list->nchildren, sizeof *items);
    size_t *count = op__config_count(sec, k, obj);
    *(char ***)op__config_field(sec, k, obj) = items;
    *count = 0;
    for (size_t i = 0; i < list->nchildren; i++) {
        const op_conf_node_t *el = &list->children[i];
        if ((k->flags & F_NAME) && !op__config_valid_name(el->value))
            return fail(c, el, where, "%s: bad name '%s' (letters, digits, '.', '_', '-')", k->key, el->value);
        for (size_t j = 0; j < i; j++)
            if (strcmp(items[j], el->value) == 0)
                return fail(c, el, where, "%s: '%s' is listed twice", k->key, el->value);
        items[(*count)++] = op_strdup(el->value);
    }
    return k->check ? k->check(c, list, where, obj) : 0;
}

/* A list's default is written "a, b": an empty list in the file means it
 * too, so a list with a default is never empty. */
void op__config_convert_default_list(const op_conf_section_t *sec, const key_def_t *k, void *obj)
{
    size_t n = 1;
    for (const char *p = k->def; *p != '\0'; p++)
        n += *p == ',';
    char **items = op_calloc(n, sizeof *items);
    size_t *count = op__config_count(sec, k, obj);
    *(char ***)op__config_field(sec, k, obj) = items;
    *count = 0;
    for (const char *p = k->def; *p != '\0';) {
        p += strspn(p, " ");
        size_t len = strcspn(p, ",");
        while (len > 0 && p[len - 1] == ' ')
            len--;
        items[(*count)++] = op_strndup(p, len);
        p += strcspn(p, ",");
        p += *p == ',';
    }
}
