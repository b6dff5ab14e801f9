/* The outpost.conf syntax: a small block format in the style of nginx and
 * rspamd's UCL, parsed into a tree whose every node knows its file and line.
 *
 *   # comment to end of line
 *   key = value                 (newline or ';' ends it)
 *   key = [value, value, ...]   (a list; may span lines; trailing comma ok)
 *   section { ... }             (a block)
 *   section name { ... }        (a named block, e.g. listener postout { })
 *
 * Values are scalars: a bare word (letters, digits and . _ - / : + @ * ! ~ %,
 * plus a [...] after its first character, so tcp:[::1]:25 needs no quotes)
 * or a "double-quoted string" with \" \\ \n \t escapes.  Types (numbers,
 * durations like 10s, octal modes, booleans) are given by the schema in
 * config.c, not by the syntax, so "0660" is never silently a decimal number
 * and "no" is never silently a country code. */
#ifndef OP_CONF_PARSE_H
#define OP_CONF_PARSE_H

#include <stddef.h>

typedef enum {
    OP_CONF_SCALAR,
    OP_CONF_LIST,
    OP_CONF_BLOCK,
} op_conf_kind_t;

typedef struct op_conf_node op_conf_node_t;
struct op_conf_node {
    op_conf_kind_t kind;
    char *key;      /* NULL for list elements */
    char *name;     /* block name (listener NAME { }), or NULL */
    char *value;    /* OP_CONF_SCALAR only */
    int quoted;     /* scalar was written "quoted" */
    const char *file; /* shared, owned by the tree root */
    int line;
    op_conf_node_t *children; /* list elements or block items, in order */
    size_t nchildren;
};

/* Parses text (len bytes; need not be NUL terminated).  file names the
 * source in error messages.  Returns the root block, or NULL with a message
 * "FILE:LINE: what is wrong" in err. */
op_conf_node_t *op_conf_parse(const char *file, const char *text, size_t len,
                              char *err, size_t errlen);
/* Reads and parses a file. */
op_conf_node_t *op_conf_parse_file(const char *path, char *err, size_t errlen);
void op_conf_free(op_conf_node_t *root);

#endif
