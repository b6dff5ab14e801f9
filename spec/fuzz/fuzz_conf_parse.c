/* libFuzzer target for the outpost.conf parser (engine/config/conf_parse.c),
 * which also runs on SIGHUP inside the daemon: garbage must give an error,
 * never a crash, a leak or a tree that does not say what the text said.
 *
 * Input: the file's text, on a heap copy of exactly its bytes (ASan catches
 * a read past the end).  Checks:
 *   - a failed parse returns NULL and an error "fuzz.conf:LINE: what" whose
 *     LINE is 0 or within the text's lines;
 *   - a tree's nodes are well formed: a block's items have a key, a list's
 *     elements are scalars without one, a scalar has a value, no node is
 *     deeper than the nesting bound, every line is within the text;
 *   - written back in the syntax (every value quoted, escapes for '"', '\',
 *     newline and tab), the tree parses to the same tree.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE \
 *       -Iengine spec/fuzz/fuzz_conf_parse.c engine/config/conf_parse.c \
 *       engine/core/mem.c engine/core/log.c engine/core/log_format.c -o build/fuzz_conf_parse
 *   build/fuzz_conf_parse -max_total_time=60 spec/fuzz/corpus/conf_parse */
#include "config/conf_parse.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "invariant failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                           \
        }                                                                      \
    } while (0)

#define MAX_DEPTH 16 /* conf_parse.c's bound on nested blocks */

static void check_node(const op_conf_node_t *n, int depth, int lines, int is_elem)
{
    REQUIRE(depth <= MAX_DEPTH + 1);
    REQUIRE(n->line >= 1 && n->line <= lines);
    REQUIRE(is_elem ? n->key == NULL : (n->key != NULL && n->key[0] != '\0') || depth == 0);
    switch (n->kind) {
    case OP_CONF_SCALAR:
        REQUIRE(n->value != NULL && n->nchildren == 0);
        REQUIRE(n->quoted || (n->value[0] != '\0' && strpbrk(n->value, " \t\n\"{}#;,") == NULL));
        break;
    case OP_CONF_LIST:
        REQUIRE(!is_elem && n->value == NULL);
        for (size_t i = 0; i < n->nchildren; i++) {
            REQUIRE(n->children[i].kind == OP_CONF_SCALAR);
            check_node(&n->children[i], depth, lines, 1);
        }
        break;
    case OP_CONF_BLOCK:
        REQUIRE(!is_elem && n->value == NULL);
        for (size_t i = 0; i < n->nchildren; i++)
            check_node(&n->children[i], depth + 1, lines, 0);
        break;
    default:
        REQUIRE(!"a node of no known kind");
    }
}

typedef struct {
    char *p;
    size_t len, cap;
} out_t;

static void put(out_t *o, const char *s, size_t n)
{
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->p = realloc(o->p, o->cap);
        REQUIRE(o->p != NULL);
    }
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void put_s(out_t *o, const char *s) { put(o, s, strlen(s)); }

static void put_quoted(out_t *o, const char *s)
{
    put_s(o, "\"");
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            put(o, "\\", 1), put(o, s, 1);
        else if (*s == '\n')
            put_s(o, "\\n");
        else if (*s == '\t')
            put_s(o, "\\t");
        else
            put(o, s, 1);
    }
    put_s(o, "\"");
}

static void write_items(out_t *o, const op_conf_node_t *block)
{
    for (size_t i = 0; i < block->nchildren; i++) {
        const op_conf_node_t *n = &block->children[i];
        put_s(o, n->key);
        if (n->kind == OP_CONF_BLOCK) {
            if (n->name != NULL) {
                put_s(o, " ");
                put_quoted(o, n->name);
            }
            put_s(o, " {\n");
            write_items(o, n);
            put_s(o, "}\n");
        } else if (n->kind == OP_CONF_LIST) {
            put_s(o, " = [");
            for (size_t j = 0; j < n->nchildren; j++) {
                put_quoted(o, n->children[j].value);
                put_s(o, j + 1 < n->nchildren ? ", " : "");
            }
            put_s(o, "]\n");
        } else {
            put_s(o, " = ");
            put_quoted(o, n->value);
            put_s(o, "\n");
        }
    }
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static void check_same(const op_conf_node_t *a, const op_conf_node_t *b)
{
    REQUIRE(a->kind == b->kind);
    REQUIRE(same(a->key, b->key) && same(a->name, b->name) && same(a->value, b->value));
    REQUIRE(a->nchildren == b->nchildren);
    for (size_t i = 0; i < a->nchildren; i++)
        check_same(&a->children[i], &b->children[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    memcpy(text, data, size);
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += text[i] == '\n';
    char err[512] = "";
    op_conf_node_t *root = op_conf_parse("fuzz.conf", text, size, err, sizeof err);
    if (root == NULL) {
        int line = -1;
        REQUIRE(sscanf(err, "fuzz.conf:%d:", &line) == 1);
        REQUIRE(line >= 0 && line <= lines);
        REQUIRE(strlen(err) > strlen("fuzz.conf:1: "));
        free(text);
        return 0;
    }
    REQUIRE(root->kind == OP_CONF_BLOCK);
    check_node(root, 0, lines, 0);

    out_t o = {0};
    put_s(&o, "");
    write_items(&o, root);
    char err2[512] = "";
    op_conf_node_t *again = op_conf_parse("fuzz.conf", o.p, o.len, err2, sizeof err2);
    if (again == NULL) {
        fprintf(stderr, "written back, the tree does not parse: %s\n---\n%s---\n", err2, o.p);
        abort();
    }
    check_same(root, again);
    op_conf_free(again);
    op_conf_free(root);
    free(o.p);
    free(text);
    return 0;
}
