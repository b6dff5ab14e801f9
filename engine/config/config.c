/* Validation of the parsed outpost.conf against the schema of each
 * registered section (config_schema.h), and conversion into the sections'
 * settings structs.
 *
 * Each section's rows live with the module that uses it, so the accepted
 * keys, their types, their defaults and the reference in docs/config.md
 * (op_config_write_reference) cannot disagree.  Defaults are written as
 * text and go through the same conversion as values from the file, so
 * "10s" in a table means exactly what "10s" means in a config.  Rules that
 * relate sections to each other (a listener's service must exist, listen
 * addresses must differ, policy names depend on lua_dir) run after every
 * section is read, so sections may come in any order. */
#include "config/config.h"

#include "config/config_schema.h"
#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define fail op__config_fail
#define NSECTIONS op__config_nsections
#define registry op__config_sections

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

/* lua_jit was a bool before `lib` came (issue 20): the bool spellings
 * keep meaning what they meant. */
int op__config_lua_jit_code(const char *v)
{
    if (strcmp(v, "lib") == 0)
        return OP_LUA_JIT_LIB;
    if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0)
        return OP_LUA_JIT_YES;
    return OP_LUA_JIT_NO;
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

const char *op__config_suggest(const char *word, const char *const *cands, size_t n, char *buf,
                               size_t len)
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

static size_t section_index(const op_conf_section_t *sec)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (registry[i] == sec)
            return i;
    OP_ASSERT(0); /* a section that is not in config_sections.c */
    return 0;
}

static const op_conf_section_t *find_section(const char *name)
{
    for (size_t i = 0; i < NSECTIONS; i++)
        if (strcmp(registry[i]->name, name) == 0)
            return registry[i];
    return NULL;
}

const key_def_t *op__config_find_key(const op_conf_section_t *sec, const char *key)
{
    for (size_t i = 0; i < sec->nkeys; i++)
        if (strcmp(sec->keys[i].key, key) == 0)
            return &sec->keys[i];
    return NULL;
}

const op_conf_node_t *op__config_find_child(const op_conf_node_t *block, const char *key)
{
    for (size_t i = 0; block != NULL && i < block->nchildren; i++)
        if (block->children[i].key != NULL && strcmp(block->children[i].key, key) == 0)
            return &block->children[i];
    return NULL;
}

/* A section without a struct keeps key i's value in slot i. */
void *op__config_field(const op_conf_section_t *sec, const key_def_t *k, void *obj)
{
    if (sec->size == 0 && !sec->in_config)
        return &((op_conf_slot_t *)obj)[k - sec->keys].v;
    return (char *)obj + k->off;
}

size_t *op__config_count(const op_conf_section_t *sec, const key_def_t *k, void *obj)
{
    if (sec->size == 0 && !sec->in_config)
        return &((op_conf_slot_t *)obj)[k - sec->keys].count;
    return (size_t *)((char *)obj + k->count_off);
}

/* Names end up in log lines, Postfix's policy_context and (for services)
 * file names, so they are kept to a conservative alphabet. */
int op__config_valid_name(const char *s)
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

/* Checks the items of a section block against the schema, converts them
 * into obj and applies the defaults of the keys not given.  block is NULL
 * for an absent daemon { } or request_limits { }: then only defaults apply. */
static int convert_block(ctx_t *c, const op_conf_section_t *sec, const op_conf_node_t *block,
                         const char *where, void *obj)
{
    char buf[96];
    unsigned char given[OP__CONFIG_MAX_KEYS] = {0};
    OP_ASSERT(sec->nkeys <= OP__CONFIG_MAX_KEYS);
    for (size_t i = 0; block != NULL && i < block->nchildren; i++) {
        const op_conf_node_t *n = &block->children[i];
        const key_def_t *k = op__config_find_key(sec, n->key);
        if (k == NULL) {
            const char *cands[OP__CONFIG_MAX_KEYS];
            for (size_t j = 0; j < sec->nkeys; j++)
                cands[j] = sec->keys[j].key;
            return fail(c, n, where, "unknown key '%s'%s", n->key,
                        op__config_suggest(n->key, cands, sec->nkeys, buf, sizeof buf));
        }
        if (given[k - sec->keys])
            return fail(c, n, where, "duplicate key '%s' (first given at line %d)", n->key,
                        op__config_find_child(block, n->key)->line);
        given[k - sec->keys] = 1;
        if (k->type == T_LIST) {
            if (n->kind != OP_CONF_LIST)
                return fail(c, n, where, "%s must be a list, e.g. %s = [a, b]", n->key, n->key);
            if (op__config_convert_list(c, sec, k, n, where, obj) < 0)
                return -1;
        } else {
            if (n->kind == OP_CONF_LIST)
                return fail(c, n, where, "%s takes one value, not a list", n->key);
            if (n->kind == OP_CONF_BLOCK)
                return fail(c, n, where, "%s takes a value (%s = VALUE), not a block", n->key, n->key);
            if (op__config_convert_scalar(c, sec, k, n, where, n->value, obj) < 0)
                return -1;
        }
    }
    const op_conf_node_t *at = block ? block : c->cfg->root;
    for (size_t i = 0; i < sec->nkeys; i++) {
        const key_def_t *k = &sec->keys[i];
        if (given[i])
            continue;
        if (k->flags & F_REQUIRED)
            return fail(c, at, where, "missing required key '%s'", k->key);
        if (k->def != NULL && k->type == T_LIST)
            op__config_convert_default_list(sec, k, obj);
        else if (k->def != NULL && op__config_convert_scalar(c, sec, k, at, where, k->def, obj) < 0)
            return -1;
    }
    return sec->check != NULL && block != NULL ? sec->check(c, block, where, obj) : 0;
}

/* ---- rules across sections ---- */

int op__config_undefined_service(ctx_t *c, const op_conf_node_t *at, const char *where,
                                 const char *name)
{
    const op_config_t *cfg = c->cfg;
    const char **cands = op_calloc(cfg->nservices, sizeof *cands);
    char buf[96];
    for (size_t i = 0; i < cfg->nservices; i++)
        cands[i] = cfg->services[i].name;
    fail(c, at, where, "service '%s' is not defined%s", name,
         op__config_suggest(name, cands, cfg->nservices, buf, sizeof buf));
    free(cands);
    return -1;
}

const op_conf_node_t *const *op__config_nodes(ctx_t *c, const op_conf_section_t *sec)
{
    return c->nodes[section_index(sec)];
}

/* ---- loading ---- */

static size_t item_size(const op_conf_section_t *sec)
{
    return sec->size ? sec->size : sec->nkeys * sizeof(op_conf_slot_t);
}

static void *section_obj(op_config_t *cfg, size_t s)
{
    return registry[s]->in_config ? (void *)cfg : cfg->sections[s];
}

/* The storage of every section, calloc'ed whole, so op_config_free copes
 * with a half-loaded item. */
static void alloc_sections(ctx_t *c)
{
    op_config_t *cfg = c->cfg;
    const op_conf_node_t *root = cfg->root;
    for (size_t s = 0; s < NSECTIONS; s++) {
        const op_conf_section_t *sec = registry[s];
        OP_ASSERT(!sec->named || sec->size >= sizeof(op_conf_item_t));
        if (sec->in_config)
            continue;
        size_t n = 1;
        if (sec->named) {
            n = 0;
            for (size_t i = 0; i < root->nchildren; i++)
                n += root->children[i].kind == OP_CONF_BLOCK && strcmp(root->children[i].key, sec->name) == 0;
            c->nodes[s] = op_calloc(n, sizeof *c->nodes[s]);
        }
        cfg->sections[s] = op_calloc(n, item_size(sec));
    }
}

static int validate(ctx_t *c)
{
    op_config_t *cfg = c->cfg;
    const op_conf_node_t *root = cfg->root, *seen[OP_CONFIG_MAX_SECTIONS] = {0};
    char buf[96];
    alloc_sections(c);

    for (size_t i = 0; i < root->nchildren; i++) {
        const op_conf_node_t *n = &root->children[i];
        const op_conf_section_t *sec = find_section(n->key);
        if (sec == NULL) {
            const char *cands[OP_CONFIG_MAX_SECTIONS];
            for (size_t j = 0; j < NSECTIONS; j++)
                cands[j] = registry[j]->name;
            const char *hint = op__config_suggest(n->key, cands, NSECTIONS, buf, sizeof buf);
            if (*hint)
                return fail(c, n, NULL, "unknown section '%s'%s", n->key, hint);
            char all[512] = "";
            for (size_t j = 0; j < NSECTIONS; j++)
                snprintf(all + strlen(all), sizeof all - strlen(all), "%s%s", j ? ", " : "",
                         registry[j]->name);
            return fail(c, n, NULL, "unknown section '%s' (sections: %s)", n->key, all);
        }
        if (n->kind != OP_CONF_BLOCK)
            return fail(c, n, NULL, "%s is a section: write %s%s { ... }", n->key, n->key,
                        sec->named ? " NAME" : "");
        if (sec->named && n->name == NULL)
            return fail(c, n, NULL, "%s needs a name: %s NAME { ... }", n->key, n->key);
        if (!sec->named && n->name != NULL)
            return fail(c, n, NULL, "%s takes no name: %s { ... }", n->key, n->key);
        if (sec->named && !op__config_valid_name(n->name))
            return fail(c, n, NULL, "bad %s name '%s' (letters, digits, '.', '_', '-')", n->key, n->name);
        size_t s = section_index(sec);
        const op_conf_node_t *first = seen[s];
        if (!sec->repeatable && first != NULL)
            return fail(c, n, NULL, "section '%s' given twice (first at line %d)", n->key, first->line);
        seen[s] = n;
        for (size_t j = 0; sec->named && j < i; j++) {
            const op_conf_node_t *m = &root->children[j];
            if (strcmp(m->key, n->key) == 0 && m->name != NULL && strcmp(m->name, n->name) == 0)
                return fail(c, n, NULL, "%s '%s' defined twice (first at line %d)", n->key, n->name, m->line);
        }

        char where[96];
        snprintf(where, sizeof where, "%s '%s'", n->key, sec->named ? n->name : "");
        if (sec->named) {
            size_t k = cfg->nitems[s]++;
            op_conf_item_t *item = (op_conf_item_t *)((char *)cfg->sections[s] + k * sec->size);
            c->nodes[s][k] = n;
            *item = (op_conf_item_t){.name = op_strdup(n->name), .file = n->file, .line = n->line};
            if (convert_block(c, sec, n, where, item) < 0)
                return -1;
        } else if (convert_block(c, sec, n, n->key, section_obj(cfg, s)) < 0) {
            return -1;
        }
    }
    for (size_t s = 0; s < NSECTIONS; s++)
        if (!registry[s]->named && seen[s] == NULL &&
            convert_block(c, registry[s], NULL, registry[s]->name, section_obj(cfg, s)) < 0)
            return -1;

    size_t li = section_index(&op_listener_section), si = section_index(&op_service_section);
    cfg->listeners = cfg->sections[li];
    cfg->nlisteners = cfg->nitems[li];
    cfg->services = cfg->sections[si];
    cfg->nservices = cfg->nitems[si];

    if (cfg->nlisteners == 0)
        return fail(c, root, NULL, "no listener defined: at least one 'listener NAME { ... }' is required");
    if (cfg->nservices == 0)
        return fail(c, root, NULL, "no service defined: at least one 'service NAME { ... }' is required");
    if (op__service_config_resolve(c) < 0)
        return -1;
    for (size_t s = 0; s < NSECTIONS; s++)
        if (registry[s]->finish != NULL && registry[s]->finish(c) < 0)
            return -1;
    return op__listener_config_check(c);
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
    for (size_t s = 0; s < NSECTIONS; s++)
        free(c.nodes[s]);
    if (rc < 0) {
        op_config_free(cfg);
        return NULL;
    }
    return cfg;
}

/* Frees the strings and lists the schema put into obj, and what the
 * section's check added. */
static void free_fields(const op_conf_section_t *sec, void *obj)
{
    for (size_t i = 0; i < sec->nkeys; i++) {
        const key_def_t *k = &sec->keys[i];
        void *field = op__config_field(sec, k, obj);
        if (k->type == T_STRING || k->type == T_PATH)
            free(*(char **)field);
        if (k->type == T_LIST) {
            char **items = *(char ***)field;
            for (size_t j = 0, n = *op__config_count(sec, k, obj); j < n; j++)
                free(items[j]);
            free(items);
        }
    }
    if (sec->free != NULL)
        sec->free(obj);
}

void op_config_free(op_config_t *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t s = 0; s < NSECTIONS; s++) {
        const op_conf_section_t *sec = registry[s];
        if (sec->in_config) {
            free_fields(sec, cfg);
            continue;
        }
        if (cfg->sections[s] == NULL)
            continue;
        for (size_t i = 0, n = sec->named ? cfg->nitems[s] : 1; i < n; i++) {
            void *obj = (char *)cfg->sections[s] + i * item_size(sec);
            free_fields(sec, obj);
            if (sec->named)
                free(((op_conf_item_t *)obj)->name);
        }
        free(cfg->sections[s]);
    }
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

const void *op_config_section(const op_config_t *cfg, const op_conf_section_t *sec)
{
    OP_ASSERT(!sec->named && !sec->in_config);
    return cfg->sections[section_index(sec)];
}

const void *op_config_items(const op_config_t *cfg, const op_conf_section_t *sec, size_t *n)
{
    size_t s = section_index(sec);
    OP_ASSERT(sec->named);
    *n = cfg->nitems[s];
    return cfg->sections[s];
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
        const op_conf_section_t *sec = registry[s];
        fprintf(out, "%s### %s\n\n%s\n\n", s ? "\n" : "", sec->name, sec->descr);
        fputs("| key | type | default | description |\n|---|---|---|---|\n", out);
        for (size_t i = 0; i < sec->nkeys; i++) {
            const key_def_t *k = &sec->keys[i];
            fprintf(out, "| `%s` | ", k->key);
            if (k->type == T_ENUM)
                fprintf(out, "enum: %s", op__config_enum_list(k->values, buf, sizeof buf));
            else
                md_cell(out, k->doc_type ? k->doc_type : op__config_type_names[k->type]);
            fputs(" | ", out);
            if (k->doc_def != NULL || k->def == NULL) {
                md_cell(out, k->doc_def ? k->doc_def : "none");
            } else {
                fputc('`', out);
                md_cell(out, k->def[0] ? k->def : "\"\"");
                fputc('`', out);
            }
            fputs(" | ", out);
            md_cell(out, k->descr);
            fputs(" |\n", out);
        }
    }
}
