/* The outpost.conf tokenizer and parser (syntax in conf_parse.h).
 *
 * Recursive descent over a one-token lookahead.  The first error wins: it is
 * written to the caller's buffer as "FILE:LINE: what", the parse unwinds and
 * the partial tree is freed.  Input is bounded (size, nesting) because the
 * parser also runs on SIGHUP inside a daemon that must not fall over on a
 * truncated or garbage file. */
#include "config/conf_parse.h"

#include "core/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INPUT (1024 * 1024)
#define MAX_DEPTH 16

typedef enum {
    TK_EOF,
    TK_NEWLINE,
    TK_WORD,
    TK_STRING,
    TK_EQUALS,
    TK_LBRACE,
    TK_RBRACE,
    TK_LBRACKET,
    TK_RBRACKET,
    TK_COMMA,
    TK_SEMI,
} tok_kind_t;

typedef struct {
    tok_kind_t kind;
    char *text; /* TK_WORD, TK_STRING: owned until taken */
    int line;
} token_t;

typedef struct {
    const char *file; /* the root's copy, shared by every node */
    const char *p, *end;
    int line;
    token_t tok; /* the lookahead */
    char *err;
    size_t errlen;
    int failed;
    int in_list; /* inside [ ]: '=' is part of a word (checks = [MO3=log-only]) */
} parser_t;

static void set_error(char *err, size_t errlen, const char *file, int line,
                      const char *fmt, va_list ap)
{
    if (err == NULL || errlen == 0)
        return;
    int n = line > 0 ? snprintf(err, errlen, "%s:%d: ", file, line)
                     : snprintf(err, errlen, "%s: ", file);
    if (n < 0 || (size_t)n >= errlen)
        return;
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

static void fail(parser_t *ps, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(parser_t *ps, int line, const char *fmt, ...)
{
    /* Only the first error is reported: later ones are consequences. */
    if (ps->failed)
        return;
    ps->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    set_error(ps->err, ps->errlen, ps->file, line, fmt, ap);
    va_end(ap);
    /* Make every parse loop stop at the next token check. */
    free(ps->tok.text);
    ps->tok.text = NULL;
    ps->tok.kind = TK_EOF;
}

/* An error outside the parse proper; line 0 names no line. */
static void fail_file(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void fail_file(char *err, size_t errlen, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(err, errlen, file, line, fmt, ap);
    va_end(ap);
}

/* Locale-independent on purpose: the meaning of a config file must not
 * depend on the environment outpostd was started from. */
static int is_word_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("._-/:+@*!~%", c) != NULL);
}

/* A byte as it should appear in a message: itself if printable. */
static const char *char_repr(char c, char buf[8])
{
    unsigned char u = (unsigned char)c;
    if (u >= 0x21 && u < 0x7f)
        snprintf(buf, 8, "%c", c);
    else
        snprintf(buf, 8, "\\x%02x", u);
    return buf;
}

static const char *describe(const token_t *t, char *buf, size_t len)
{
    static const char *const punct[] = {
        [TK_EQUALS] = "'='",   [TK_LBRACE] = "'{'",   [TK_RBRACE] = "'}'",
        [TK_LBRACKET] = "'['", [TK_RBRACKET] = "']'", [TK_COMMA] = "','",
        [TK_SEMI] = "';'",
    };
    switch (t->kind) {
    case TK_EOF:
        return "end of file";
    case TK_NEWLINE:
        return "end of line";
    case TK_WORD:
        snprintf(buf, len, "'%.40s'", t->text);
        return buf;
    case TK_STRING:
        snprintf(buf, len, "\"%.40s\"", t->text);
        return buf;
    default:
        return punct[t->kind];
    }
}

static void lex_string(parser_t *ps)
{
    int line = ps->line;
    const char *start = ps->p + 1, *q = start;
    /* First find the end, so the decoded copy is allocated at its size. A
     * raw newline ends the search: a string spanning lines is almost always
     * a missing quote, and reporting it where it opened is what helps. */
    while (q < ps->end && *q != '"' && *q != '\n') {
        if (*q != '\\') {
            q++;
            continue;
        }
        if (q + 1 >= ps->end || q[1] == '\n')
            break;
        if (strchr("\"\\nt", q[1]) == NULL) {
            char b[8];
            fail(ps, line, "bad escape '\\%s' in string (allowed: \\\" \\\\ \\n \\t)",
                 char_repr(q[1], b));
            return;
        }
        q += 2;
    }
    if (q >= ps->end || *q != '"') {
        fail(ps, line, "unterminated string: no closing '\"' on the line where it starts");
        return;
    }
    char *out = op_malloc((size_t)(q - start) + 1), *o = out;
    for (const char *r = start; r < q; r++) {
        if (*r == '\\') {
            r++;
            *o++ = *r == 'n' ? '\n' : *r == 't' ? '\t' : *r;
        } else {
            *o++ = *r;
        }
    }
    *o = '\0';
    ps->tok.kind = TK_STRING;
    ps->tok.text = out;
    ps->p = q + 1;
}

static void lex_word(parser_t *ps)
{
    const char *start = ps->p;
    int open = 0;
    /* '[' inside a word (never at its start, where it opens a list) opens
     * an address bracket that ']' closes, so tcp:[::1]:10040 needs no
     * quotes while [a, b] stays a list. */
    while (ps->p < ps->end) {
        char c = *ps->p;
        if (c == '[' && ps->p > start)
            open++;
        else if (c == ']' && open > 0)
            open--;
        else if (!is_word_char(c) && !(c == '=' && ps->in_list && ps->p > start))
            break;
        ps->p++;
    }
    ps->tok.kind = TK_WORD;
    ps->tok.text = op_strndup(start, (size_t)(ps->p - start));
}

/* Reads the next token into ps->tok, dropping the previous one. */
static void lex(parser_t *ps)
{
    free(ps->tok.text);
    ps->tok.text = NULL;
    if (ps->failed) {
        ps->tok.kind = TK_EOF;
        return;
    }
    for (;;) {
        if (ps->p >= ps->end) {
            ps->tok.kind = TK_EOF;
            ps->tok.line = ps->line;
            return;
        }
        char c = *ps->p;
        if (c == ' ' || c == '\t' || c == '\r') {
            ps->p++;
        } else if (c == '#') {
            while (ps->p < ps->end && *ps->p != '\n')
                ps->p++;
        } else {
            break;
        }
    }
    ps->tok.line = ps->line;
    char c = *ps->p;
    static const struct {
        char c;
        tok_kind_t kind;
    } single[] = {
        {'=', TK_EQUALS},   {'{', TK_LBRACE},   {'}', TK_RBRACE}, {'[', TK_LBRACKET},
        {']', TK_RBRACKET}, {',', TK_COMMA},    {';', TK_SEMI},
    };
    if (c == '\n') {
        ps->p++;
        ps->line++;
        ps->tok.kind = TK_NEWLINE;
        return;
    }
    for (size_t i = 0; i < sizeof single / sizeof single[0]; i++) {
        if (single[i].c == c) {
            ps->p++;
            ps->tok.kind = single[i].kind;
            return;
        }
    }
    if (c == '"') {
        lex_string(ps);
    } else if (is_word_char(c)) {
        lex_word(ps);
    } else {
        char b[8];
        fail(ps, ps->line, "unexpected character '%s' (quote values that contain it)",
             char_repr(c, b));
    }
}

/* Hands the lookahead's text over to the caller. */
static char *take(parser_t *ps)
{
    char *s = ps->tok.text;
    ps->tok.text = NULL;
    return s;
}

static void append(op_conf_node_t *parent, size_t *cap, const op_conf_node_t *child)
{
    if (parent->nchildren == *cap) {
        *cap = *cap ? *cap * 2 : 4;
        parent->children = op_realloc(parent->children, *cap * sizeof *parent->children);
    }
    parent->children[parent->nchildren++] = *child;
}

static void parse_list(parser_t *ps, op_conf_node_t *list)
{
    int open_line = ps->tok.line;
    size_t cap = 0;
    char b[64];
    list->kind = OP_CONF_LIST;
    ps->in_list = 1;
    lex(ps);
    for (;;) {
        while (ps->tok.kind == TK_NEWLINE)
            lex(ps);
        if (ps->failed)
            return;
        if (ps->tok.kind == TK_RBRACKET) { /* empty list, or a trailing comma */
            ps->in_list = 0;
            lex(ps);
            return;
        }
        if (ps->tok.kind == TK_WORD || ps->tok.kind == TK_STRING) {
            op_conf_node_t el = {
                .kind = OP_CONF_SCALAR,
                .quoted = ps->tok.kind == TK_STRING,
                .file = ps->file,
                .line = ps->tok.line,
            };
            el.value = take(ps);
            append(list, &cap, &el);
            lex(ps);
        } else if (ps->tok.kind == TK_LBRACKET) {
            fail(ps, ps->tok.line, "lists cannot be nested");
            return;
        } else if (ps->tok.kind == TK_COMMA) {
            fail(ps, ps->tok.line, "empty element in list (two commas, or a comma after '[')");
            return;
        } else {
            fail(ps, ps->tok.line, "list opened at line %d is not closed: expected a value or ']' before %s",
                 open_line, describe(&ps->tok, b, sizeof b));
            return;
        }
        while (ps->tok.kind == TK_NEWLINE)
            lex(ps);
        if (ps->tok.kind == TK_COMMA) {
            lex(ps);
        } else if (ps->tok.kind == TK_RBRACKET) {
            ps->in_list = 0;
            lex(ps);
            return;
        } else {
            fail(ps, ps->tok.line, "list opened at line %d is not closed: expected ',' or ']' before %s",
                 open_line, describe(&ps->tok, b, sizeof b));
            return;
        }
    }
}

static void parse_block_body(parser_t *ps, op_conf_node_t *block, int depth);

/* key = value | key [name] { ... } */
static void parse_item(parser_t *ps, op_conf_node_t *block, size_t *cap, int depth)
{
    char b[64];
    op_conf_node_t n = {.kind = OP_CONF_SCALAR, .file = ps->file, .line = ps->tok.line};
    n.key = take(ps);
    lex(ps);

    if (ps->tok.kind == TK_EQUALS) {
        lex(ps);
        if (ps->tok.kind == TK_WORD || ps->tok.kind == TK_STRING) {
            n.quoted = ps->tok.kind == TK_STRING;
            n.value = take(ps);
            lex(ps);
        } else if (ps->tok.kind == TK_LBRACKET) {
            parse_list(ps, &n);
        } else {
            fail(ps, ps->tok.line, "expected a value after '%s =', found %s", n.key,
                 describe(&ps->tok, b, sizeof b));
        }
        /* A '}' may end the last value of a one-line block. */
        if (ps->tok.kind == TK_NEWLINE || ps->tok.kind == TK_SEMI)
            lex(ps);
        else if (ps->tok.kind != TK_EOF && ps->tok.kind != TK_RBRACE)
            fail(ps, ps->tok.line,
                 "expected end of line or ';' after the value of '%s', found %s "
                 "(quote a value that contains spaces)",
                 n.key, describe(&ps->tok, b, sizeof b));
    } else {
        if (ps->tok.kind == TK_WORD || ps->tok.kind == TK_STRING) {
            n.name = take(ps);
            lex(ps);
            if (ps->tok.kind != TK_LBRACE)
                fail(ps, n.line, "expected '{' after '%s %s'", n.key, n.name);
        } else if (ps->tok.kind != TK_LBRACE) {
            fail(ps, n.line, "expected '=' or '{' after '%s'", n.key);
        }
        if (ps->tok.kind == TK_LBRACE) {
            n.kind = OP_CONF_BLOCK;
            if (depth + 1 > MAX_DEPTH) {
                fail(ps, n.line, "blocks nested more than %d deep", MAX_DEPTH);
            } else {
                lex(ps);
                parse_block_body(ps, &n, depth + 1);
            }
        }
    }
    /* Appended even after an error, so that op_conf_free reclaims it. */
    append(block, cap, &n);
}

static void parse_block_body(parser_t *ps, op_conf_node_t *block, int depth)
{
    size_t cap = 0;
    char b[64];
    for (;;) {
        switch (ps->tok.kind) {
        case TK_NEWLINE:
        case TK_SEMI:
            lex(ps);
            break;
        case TK_EOF:
            if (depth > 0)
                fail(ps, block->line, "block '%s%s%s' opened here is not closed: end of file before its '}'",
                     block->key, block->name ? " " : "", block->name ? block->name : "");
            return;
        case TK_RBRACE:
            if (depth == 0)
                fail(ps, ps->tok.line, "unexpected '}': no block is open");
            else
                lex(ps);
            return;
        case TK_WORD:
            parse_item(ps, block, &cap, depth);
            break;
        default:
            fail(ps, ps->tok.line, "expected a key, found %s", describe(&ps->tok, b, sizeof b));
            return;
        }
    }
}

op_conf_node_t *op_conf_parse(const char *file, const char *text, size_t len,
                              char *err, size_t errlen)
{
    if (len > MAX_INPUT) {
        fail_file(err, errlen, file, 0, "file is larger than 1 MiB (%zu bytes); refusing to parse it", len);
        return NULL;
    }
    const char *nul = len ? memchr(text, '\0', len) : NULL;
    if (nul != NULL) {
        int line = 1;
        for (const char *p = text; p < nul; p++)
            line += *p == '\n';
        fail_file(err, errlen, file, line, "NUL byte: this is not a text file");
        return NULL;
    }

    op_conf_node_t *root = op_calloc(1, sizeof *root);
    root->kind = OP_CONF_BLOCK;
    root->file = op_strdup(file);
    root->line = 1;
    parser_t ps = {
        .file = root->file, .p = text, .end = text + len, .line = 1,
        .err = err, .errlen = errlen,
    };
    lex(&ps);
    parse_block_body(&ps, root, 0);
    free(ps.tok.text);
    if (ps.failed) {
        op_conf_free(root);
        return NULL;
    }
    return root;
}

op_conf_node_t *op_conf_parse_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_file(err, errlen, path, 0, "cannot open: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > MAX_INPUT) {
        fail_file(err, errlen, path, 0, "file is larger than 1 MiB (%lld bytes); refusing to parse it",
                  (long long)st.st_size);
        close(fd);
        return NULL;
    }
    /* Read one byte past the limit so a file that grows (or a FIFO) is
     * caught by op_conf_parse's size check as well. */
    size_t cap = 4096, len = 0;
    char *buf = op_malloc(cap);
    for (;;) {
        if (len == cap) {
            cap = cap * 2 > MAX_INPUT + 1 ? MAX_INPUT + 1 : cap * 2;
            if (len == cap)
                break;
            buf = op_realloc(buf, cap);
        }
        ssize_t n = read(fd, buf + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fail_file(err, errlen, path, 0, "cannot read: %s", strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    op_conf_node_t *root = op_conf_parse(path, buf, len, err, errlen);
    free(buf);
    return root;
}

static void free_node(op_conf_node_t *n)
{
    for (size_t i = 0; i < n->nchildren; i++)
        free_node(&n->children[i]);
    free(n->children);
    free(n->key);
    free(n->name);
    free(n->value);
}

void op_conf_free(op_conf_node_t *root)
{
    if (root == NULL)
        return;
    free_node(root);
    free((char *)root->file); /* the one copy every node points to */
    free(root);
}
