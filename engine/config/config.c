/* Validation of the parsed outpost.conf against a schema, and conversion
 * into op_config_t.
 *
 * The schema is one static table, so the accepted keys, their types, their
 * defaults and the reference in docs/config.md (op_config_write_reference)
 * cannot disagree.  Defaults are written as text and go through the same
 * conversion as values from the file, so "10s" in the table means exactly
 * what "10s" means in a config.  Rules that relate keys to each other (a
 * listener's service must exist, listen addresses must differ, policy names
 * depend on lua_dir) run after every section is read, so sections may come
 * in any order. */
#include "config/config.h"

#include "config/config_schema.h"
#include "core/log.h"
#include "core/mem.h"
#include "proto/proto_policy.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define fail op__config_fail
#define abs_path op__config_abs_path



static int check_limit(ctx_t *c, const op_conf_node_t *block, const char *where, op_limit_conf_t *l);

static const char *const type_names[] = {
    [T_STRING] = "string",   [T_PATH] = "path",         [T_BOOL] = "bool",
    [T_INTEGER] = "integer", [T_DURATION] = "duration", [T_MODE] = "octal mode",
    [T_ENUM] = "enum",       [T_LIST] = "list of strings",
};

#define NSECTIONS op__config_nsections
#define NKEYS op__config_nkeys
#define sections op__config_sections
#define schema op__config_schema

/* Writes "FILE:LINE: WHERE: message" and returns -1. */
int op__config_fail(ctx_t *c, const op_conf_node_t *at, const char *where, const char *fmt, ...)
{
    if (c->err == NULL || c->errlen == 0)
        return -1;
    int n = snprintf(c->err, c->errlen, "%s:%d: %s%s", at->file, at->line,
                     where ? where : "", where ? ": " : "");
    if (n < 0 || (size_t)n >= c->errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err + n, c->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -1;
}

int op__config_log_level_code(const char *v)
{
    op_log_level_t level = OP_LOG_INFO;
    int rc = op_log_level_parse(v, &level);
    OP_ASSERT(rc == 0); /* the schema lists only names log.c knows */
    return (int)level;
}

/* ---- near-miss suggestions ---- */

static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63)
        return SIZE_MAX;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            row[j] = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            diag = up;
        }
    }
    return row[lb];
}

/* " (did you mean 'X'?)" for the closest candidate within distance 2, or "". */
static const char *suggest(const char *word, const char *const *cands, size_t n, char *buf, size_t len)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; i < n; i++) {
        size_t d = edit_distance(word, cands[i]);
        if (d < best_d) {
            best_d = d;
            best = cands[i];
        }
    }
    if (best == NULL)
        return "";
    snprintf(buf, len, " (did you mean '%s'?)", best);
    return buf;
}

/* ---- schema lookups ---- */

static const section_def_t *find_section(const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(sections[i].name, name) == 0)
            return &sections[i];
    return NULL;
}

static const key_def_t *find_key(const char *section, const char *key)
{
    for (size_t i = 0; i < NKEYS; i++)
        if (strcmp(schema[i].section, section) == 0 && strcmp(schema[i].key, key) == 0)
            return &schema[i];
    return NULL;
}

static const op_conf_node_t *find_child(const op_conf_node_t *block, const char *key)
{
    for (size_t i = 0; block != NULL && i < block->nchildren; i++)
        if (block->children[i].key != NULL && strcmp(block->children[i].key, key) == 0)
            return &block->children[i];
    return NULL;
}

/* Names end up in log lines, Postfix's policy_context and (for services)
 * file names, so they are kept to a conservative alphabet. */
static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        int alnum = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (i == 0 || (ch != '_' && ch != '-' && ch != '.')))
            return 0;
    }
    return 1;
}

/* ---- value conversion ---- */

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

/* "debug, info, notice" from "debug|info|notice". */
static const char *enum_list(const char *values, char *buf, size_t len)
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
static int convert_scalar(ctx_t *c, const key_def_t *k, const op_conf_node_t *at,
                          const char *where, const char *v, void *obj)
{
    char *field = (char *)obj + k->off;
    char buf[160];
    double x;

    if (v[0] == '\0' && ((k->flags & F_NONEMPTY) || k->type == T_PATH))
        return fail(c, at, where, "%s must not be empty", k->key);
    switch (k->type) {
    case T_STRING:
        if ((k->flags & F_NAME) && !valid_name(v))
            return fail(c, at, where, "%s: bad name '%s' (letters, digits, '.', '_', '-')", k->key, v);
        *(char **)field = op_strdup(v);
        break;
    case T_PATH:
        *(char **)field = abs_path(c->cfg->dir, v);
        break;
    case T_BOOL:
        if (parse_bool(v, (int *)field) < 0)
            return fail(c, at, where, "%s: bad boolean '%s' (use yes or no; also true/false, on/off)",
                        k->key, v);
        break;
    case T_INTEGER:
    case T_DURATION:
        if (k->type == T_INTEGER ? parse_number(v, size_units, 0, &x) : parse_number(v, time_units, 1, &x))
            return fail(c, at, where, "%s: bad %s '%s' (%s)", k->key, type_names[k->type], v,
                        k->type == T_INTEGER ? "digits with an optional k or M suffix, e.g. 64k"
                                             : "a number with an optional unit ms, s, m, h or d, e.g. 10s");
        if (check_range(c, k, at, where, v, x) < 0)
            return -1;
        if (k->type == T_INTEGER)
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
                        enum_list(k->values, buf, sizeof buf));
        if (k->code != NULL)
            *(int *)field = k->code(v);
        break;
    case T_LIST:
        OP_ASSERT(0);
    }
    return k->check ? k->check(c, at, where, obj) : 0;
}

static int convert_list(ctx_t *c, const key_def_t *k, const op_conf_node_t *list,
                        const char *where, void *obj)
{
    char **items = op_calloc(list->nchildren, sizeof *items);
    size_t *count = (size_t *)((char *)obj + k->count_off);
    *(char ***)((char *)obj + k->off) = items;
    *count = 0;
    for (size_t i = 0; i < list->nchildren; i++) {
        const op_conf_node_t *el = &list->children[i];
        if ((k->flags & F_NAME) && !valid_name(el->value))
            return fail(c, el, where, "%s: bad name '%s' (letters, digits, '.', '_', '-')", k->key, el->value);
        for (size_t j = 0; j < i; j++)
            if (strcmp(items[j], el->value) == 0)
                return fail(c, el, where, "%s: '%s' is listed twice", k->key, el->value);
        items[(*count)++] = op_strdup(el->value);
    }
    return k->check ? k->check(c, list, where, obj) : 0;
}

/* Checks the items of a section block against the schema, converts them
 * into obj and applies the defaults of the keys not given.  block is NULL
 * for an absent daemon { } or request_limits { }: then only defaults apply. */
static int convert_block(ctx_t *c, const char *section, const op_conf_node_t *block,
                         const char *where, void *obj)
{
    char buf[96];
    unsigned char given[OP__CONFIG_MAX_KEYS] = {0};
    for (size_t i = 0; block != NULL && i < block->nchildren; i++) {
        const op_conf_node_t *n = &block->children[i];
        const key_def_t *k = find_key(section, n->key);
        if (k == NULL) {
            const char *cands[OP__CONFIG_MAX_KEYS];
            size_t nc = 0;
            for (size_t j = 0; j < NKEYS; j++)
                if (strcmp(schema[j].section, section) == 0)
                    cands[nc++] = schema[j].key;
            return fail(c, n, where, "unknown key '%s'%s", n->key,
                        suggest(n->key, cands, nc, buf, sizeof buf));
        }
        if (given[k - schema])
            return fail(c, n, where, "duplicate key '%s' (first given at line %d)", n->key,
                        find_child(block, n->key)->line);
        given[k - schema] = 1;
        if (k->type == T_LIST) {
            if (n->kind != OP_CONF_LIST)
                return fail(c, n, where, "%s must be a list, e.g. %s = [a, b]", n->key, n->key);
            if (convert_list(c, k, n, where, obj) < 0)
                return -1;
        } else {
            if (n->kind == OP_CONF_LIST)
                return fail(c, n, where, "%s takes one value, not a list", n->key);
            if (n->kind == OP_CONF_BLOCK)
                return fail(c, n, where, "%s takes a value (%s = VALUE), not a block", n->key, n->key);
            if (convert_scalar(c, k, n, where, n->value, obj) < 0)
                return -1;
        }
    }
    const op_conf_node_t *at = block ? block : c->cfg->root;
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def_t *k = &schema[i];
        if (given[i] || strcmp(k->section, section) != 0)
            continue;
        if (k->flags & F_REQUIRED)
            return fail(c, at, where, "missing required key '%s'", k->key);
        if (k->def != NULL && convert_scalar(c, k, at, where, k->def, obj) < 0)
            return -1;
    }
    return 0;
}

/* ---- per-key checks ---- */

static int check_limit(ctx_t *c, const op_conf_node_t *block, const char *where, op_limit_conf_t *l)
{
    const op_conf_node_t *at = find_child(block, "resolution");
    if (at == NULL)
        at = find_child(block, "window");
    if (at == NULL)
        at = block;
    double r = l->resolution, w = l->window;
    if (r != (double)(long long)r || w != (double)(long long)w)
        return fail(c, at, where, "window and resolution must be whole seconds");
    if (r > w || (long long)w % (long long)r != 0)
        return fail(c, at, where, "resolution %.0fs must divide window %.0fs", r, w);
    if (w / r > 10000)
        return fail(c, at, where, "window %.0fs / resolution %.0fs gives %.0f buckets; at most 10000",
                    w, r, w / r);
    if (l->max_override == 0)
        l->max_override = l->max;
    if (l->max_override < l->max)
        return fail(c, find_child(block, "max_override"), where,
                    "max_override %zu is below max %zu", l->max_override, l->max);
    return 0;
}

static int check_unix_only(ctx_t *c, const op_conf_node_t *block, const char *where,
                           const op_listener_conf_t *l)
{
    for (size_t i = 0; i < block->nchildren; i++) {
        const op_conf_node_t *n = &block->children[i];
        if ((find_key("listener", n->key)->flags & F_UNIX_ONLY) && l->kind != OP_LISTEN_UNIX)
            return fail(c, n, where, "%s applies only to unix: listeners, not to %s", n->key, l->listen);
    }
    return 0;
}

static char *policy_path(const char *lua_dir, const char *name)
{
    size_t len = strlen(lua_dir) + strlen(name) + sizeof "/policies/.lua";
    char *p = op_malloc(len);
    snprintf(p, len, "%s/policies/%s.lua", lua_dir, name);
    return p;
}

/* Needs lua_dir, which the daemon section may set after the services. */
static int resolve_policies(ctx_t *c)
{
    op_config_t *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nservices; i++) {
        op_service_conf_t *s = &cfg->services[i];
        const op_conf_node_t *at = find_child(c->snodes[i], "policy");
        char where[96], *p;
        snprintf(where, sizeof where, "service '%s'", s->name);
        if (s->policy == NULL) {
            p = policy_path(cfg->lua_dir, s->name);
        } else if (strchr(s->policy, '/') == NULL) {
            size_t n = strlen(s->policy);
            if (n > 4 && strcmp(s->policy + n - 4, ".lua") == 0)
                return fail(c, at, where,
                            "policy '%s': a value without '/' is a policy name: write '%.*s' for "
                            "<lua_dir>/policies/%s, or './%s' for a file next to this config",
                            s->policy, (int)(n - 4), s->policy, s->policy, s->policy);
            if (!valid_name(s->policy))
                return fail(c, at, where, "policy: bad name '%s' (letters, digits, '.', '_', '-')", s->policy);
            p = policy_path(cfg->lua_dir, s->policy);
        } else {
            p = abs_path(cfg->dir, s->policy);
        }
        free(s->policy);
        s->policy = p;
    }
    return 0;
}

static int same_address(const op_listener_conf_t *a, const op_listener_conf_t *b)
{
    if (a->kind != b->kind)
        return 0;
    if (a->kind == OP_LISTEN_UNIX)
        return strcmp(a->path, b->path) == 0;
    unsigned char ba[sizeof(struct in6_addr)] = {0}, bb[sizeof(struct in6_addr)] = {0};
    int fa = strchr(a->host, ':') ? AF_INET6 : AF_INET, fb = strchr(b->host, ':') ? AF_INET6 : AF_INET;
    /* Compared in binary, so that [::1] and [0:0::1] are the same socket. */
    return a->port == b->port && fa == fb && inet_pton(fa, a->host, ba) == 1 &&
           inet_pton(fb, b->host, bb) == 1 && memcmp(ba, bb, sizeof ba) == 0;
}

static int undefined_service(ctx_t *c, const op_conf_node_t *at, const char *where, const char *name)
{
    const op_config_t *cfg = c->cfg;
    const char **cands = op_calloc(cfg->nservices, sizeof *cands);
    char buf[96];
    for (size_t i = 0; i < cfg->nservices; i++)
        cands[i] = cfg->services[i].name;
    fail(c, at, where, "service '%s' is not defined%s", name,
         suggest(name, cands, cfg->nservices, buf, sizeof buf));
    free(cands);
    return -1;
}

static int check_listeners(ctx_t *c)
{
    const op_config_t *cfg = c->cfg;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const op_listener_conf_t *l = &cfg->listeners[i];
        const op_conf_node_t *block = c->lnodes[i];
        char where[96];
        snprintf(where, sizeof where, "listener '%s'", l->name);
        if (op_config_service(cfg, l->service) == NULL)
            return undefined_service(c, find_child(block, "service"), where, l->service);
        for (size_t j = 0; j < l->nallow_context; j++)
            if (op_config_service(cfg, l->allow_context[j]) == NULL)
                return undefined_service(c, &find_child(block, "allow_context")->children[j],
                                         where, l->allow_context[j]);
        for (size_t j = 0; j < i; j++)
            if (same_address(l, &cfg->listeners[j]))
                return fail(c, find_child(block, "listen"), where,
                            "listen address %s is already used by listener '%s' (line %d)",
                            l->listen, cfg->listeners[j].name,
                            find_child(c->lnodes[j], "listen")->line);
    }
    return 0;
}

static int validate(ctx_t *c)
{
    op_config_t *cfg = c->cfg;
    const op_conf_node_t *root = cfg->root, *seen[OP__CONFIG_MAX_SECTIONS] = {0};
    char buf[96];
    size_t nl = 0, ns = 0;
    for (size_t i = 0; i < root->nchildren; i++) {
        nl += root->children[i].kind == OP_CONF_BLOCK && strcmp(root->children[i].key, "listener") == 0;
        ns += root->children[i].kind == OP_CONF_BLOCK && strcmp(root->children[i].key, "service") == 0;
    }
    /* calloc'ed whole, so op_config_free copes with a half-loaded item. */
    cfg->listeners = op_calloc(nl, sizeof *cfg->listeners);
    cfg->services = op_calloc(ns, sizeof *cfg->services);
    size_t nlim = 0;
    for (size_t i = 0; i < root->nchildren; i++)
        nlim += root->children[i].kind == OP_CONF_BLOCK && strcmp(root->children[i].key, "limit") == 0;
    cfg->limits = op_calloc(nlim, sizeof *cfg->limits);
    c->lnodes = op_calloc(nl, sizeof *c->lnodes);
    c->snodes = op_calloc(ns, sizeof *c->snodes);

    for (size_t i = 0; i < root->nchildren; i++) {
        const op_conf_node_t *n = &root->children[i];
        const section_def_t *sec = find_section(n->key);
        if (sec == NULL) {
            const char *cands[OP__CONFIG_MAX_SECTIONS];
            for (size_t j = 0; j < NSECTIONS; j++)
                cands[j] = sections[j].name;
            const char *hint = suggest(n->key, cands, NSECTIONS, buf, sizeof buf);
            if (*hint)
                return fail(c, n, NULL, "unknown section '%s'%s", n->key, hint);
            char all[512] = "";
            for (size_t j = 0; j < NSECTIONS; j++)
                snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", j ? ", " : "",
                         sections[j].name);
            return fail(c, n, NULL, "unknown section '%s' (sections: %s)", n->key, all);
        }
        if (n->kind != OP_CONF_BLOCK)
            return fail(c, n, NULL, "%s is a section: write %s%s { ... }", n->key, n->key,
                        sec->named ? " NAME" : "");
        if (sec->named && n->name == NULL)
            return fail(c, n, NULL, "%s needs a name: %s NAME { ... }", n->key, n->key);
        if (!sec->named && n->name != NULL)
            return fail(c, n, NULL, "%s takes no name: %s { ... }", n->key, n->key);
        if (sec->named && !valid_name(n->name))
            return fail(c, n, NULL, "bad %s name '%s' (letters, digits, '.', '_', '-')", n->key, n->name);
        const op_conf_node_t *first = seen[sec - sections];
        if (!sec->repeatable && first != NULL)
            return fail(c, n, NULL, "section '%s' given twice (first at line %d)", n->key, first->line);
        seen[sec - sections] = n;
        for (size_t j = 0; sec->named && j < i; j++) {
            const op_conf_node_t *m = &root->children[j];
            if (strcmp(m->key, n->key) == 0 && m->name != NULL && strcmp(m->name, n->name) == 0)
                return fail(c, n, NULL, "%s '%s' defined twice (first at line %d)", n->key, n->name, m->line);
        }

        char where[96];
        snprintf(where, sizeof where, "%s '%s'", n->key, sec->named ? n->name : "");
        if (strcmp(n->key, "listener") == 0) {
            op_listener_conf_t *l = &cfg->listeners[cfg->nlisteners];
            c->lnodes[cfg->nlisteners++] = n;
            *l = (op_listener_conf_t){.name = op_strdup(n->name), .file = n->file, .line = n->line};
            if (convert_block(c, n->key, n, where, l) < 0 || check_unix_only(c, n, where, l) < 0)
                return -1;
        } else if (strcmp(n->key, "service") == 0) {
            op_service_conf_t *s = &cfg->services[cfg->nservices];
            c->snodes[cfg->nservices++] = n;
            *s = (op_service_conf_t){.name = op_strdup(n->name), .file = n->file, .line = n->line};
            if (convert_block(c, n->key, n, where, s) < 0)
                return -1;
        } else if (strcmp(n->key, "limit") == 0) {
            op_limit_conf_t *l = &cfg->limits[cfg->nlimits++];
            *l = (op_limit_conf_t){.name = op_strdup(n->name), .file = n->file, .line = n->line};
            if (convert_block(c, n->key, n, where, l) < 0 || check_limit(c, n, where, l) < 0)
                return -1;
        } else if (convert_block(c, n->key, n, n->key, cfg) < 0) {
            return -1;
        }
    }
    for (size_t i = 0; i < NSECTIONS; i++)
        if (!sections[i].named && seen[i] == NULL && convert_block(c, sections[i].name, NULL, sections[i].name, cfg) < 0)
            return -1;

    if (cfg->nlisteners == 0)
        return fail(c, root, NULL, "no listener defined: at least one 'listener NAME { ... }' is required");
    if (cfg->nservices == 0)
        return fail(c, root, NULL, "no service defined: at least one 'service NAME { ... }' is required");
    if (resolve_policies(c) < 0)
        return -1;
    return check_listeners(c);
}

op_config_t *op_config_load(const char *path, char *err, size_t errlen)
{
    char *real = realpath(path, NULL);
    if (real == NULL) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    op_conf_node_t *root = op_conf_parse_file(path, err, errlen);
    if (root == NULL) {
        free(real);
        return NULL;
    }
    op_config_t *cfg = op_calloc(1, sizeof *cfg);
    cfg->path = real;
    char *slash = strrchr(real, '/');
    cfg->dir = op_strndup(real, slash == real ? 1 : (size_t)(slash - real));
    cfg->root = root;

    ctx_t c = {.cfg = cfg, .err = err, .errlen = errlen};
    int rc = validate(&c);
    free(c.lnodes);
    free(c.snodes);
    if (rc < 0) {
        op_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Frees the strings and lists the schema put into obj. */
static void free_fields(const char *section, void *obj)
{
    for (size_t i = 0; i < NKEYS; i++) {
        const key_def_t *k = &schema[i];
        char *field = (char *)obj + k->off;
        if (strcmp(k->section, section) != 0)
            continue;
        if (k->type == T_STRING || k->type == T_PATH)
            free(*(char **)field);
        if (k->type == T_LIST) {
            char **items = *(char ***)field;
            for (size_t j = 0, n = *(size_t *)((char *)obj + k->count_off); j < n; j++)
                free(items[j]);
            free(items);
        }
    }
}

void op_config_free(op_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        free_fields("listener", &cfg->listeners[i]);
        free(cfg->listeners[i].name);
        free(cfg->listeners[i].path);
        free(cfg->listeners[i].host);
    }
    for (size_t i = 0; i < cfg->nservices; i++) {
        free_fields("service", &cfg->services[i]);
        free(cfg->services[i].name);
    }
    free_fields("daemon", cfg);
    free_fields("request_limits", cfg);
    free_fields("dns", cfg);
    free_fields("smtp_verify", cfg);
    for (size_t i = 0; i < cfg->nlimits; i++) {
        free_fields("limit", &cfg->limits[i]);
        free(cfg->limits[i].name);
    }
    free(cfg->limits);
    free_fields("counters", cfg);
    free_fields("control", cfg);
    free_fields("ldap", cfg);
    free_fields("directory", cfg);
    free(cfg->listeners);
    free(cfg->services);
    free(cfg->path);
    free(cfg->dir);
    op_conf_free(cfg->root);
    free(cfg);
}

const op_service_conf_t *op_config_service(const op_config_t *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nservices; i++)
        if (cfg->services[i].name != NULL && strcmp(cfg->services[i].name, name) == 0)
            return &cfg->services[i];
    return NULL;
}

/* ---- reference ---- */

static void md_cell(FILE *out, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '|')
            fputc('\\', out);
        fputc(*s, out);
    }
}

void op_config_write_reference(FILE *out)
{
    char buf[160];
    for (size_t s = 0; s < NSECTIONS; s++) {
        fprintf(out, "%s### %s\n\n%s\n\n", s ? "\n" : "", sections[s].name, sections[s].descr);
        fputs("| key | type | default | description |\n|---|---|---|---|\n", out);
        for (size_t i = 0; i < NKEYS; i++) {
            const key_def_t *k = &schema[i];
            if (strcmp(k->section, sections[s].name) != 0)
                continue;
            fprintf(out, "| `%s` | ", k->key);
            if (k->type == T_ENUM)
                fprintf(out, "enum: %s", enum_list(k->values, buf, sizeof buf));
            else
                md_cell(out, k->doc_type ? k->doc_type : type_names[k->type]);
            fputs(" | ", out);
            if (k->def != NULL) {
                fputc('`', out);
                md_cell(out, k->def[0] ? k->def : "\"\"");
                fputc('`', out);
            } else {
                md_cell(out, k->doc_def ? k->doc_def : "none");
            }
            fputs(" | ", out);
            md_cell(out, k->descr);
            fputs(" |\n", out);
        }
    }
}
