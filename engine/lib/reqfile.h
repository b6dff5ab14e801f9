/* Postfix policy request dumps, as spec/replay/ keeps them and both
 * `outpostctl explain -f` and `outpostd ask --dry-run -f` read them:
 * NAME=VALUE lines, a blank line (or the end) after each request, '#'
 * comments, and "# tenant: NAME" before a request naming its tenant.  A
 * codec over a buffer, no I/O; it allocates with plain malloc and reports
 * running out as an error, since outpostctl links nothing else of the
 * engine (so not core/mem). */
#ifndef OP_REQFILE_H
#define OP_REQFILE_H

#include <stddef.h>

#define OP_REQFILE_TENANT_MAX 256

typedef struct {
    char **attrs;  /* "NAME=VALUE", pointers into the parsed text */
    size_t n;
    size_t line;   /* where it starts, from 1 */
    char tenant[OP_REQFILE_TENANT_MAX]; /* its "# tenant:" comment's, or "" */
} op_reqfile_req_t;

typedef struct {
    op_reqfile_req_t *reqs;
    size_t n;
    /* Why the text was refused: a static text, with the line it is on (0:
     * the text as a whole) and that line's first 80 bytes ("" if none). */
    const char *err;
    size_t err_line;
    char err_text[81];
} op_reqfile_t;

/* NULL if s is NAME=VALUE with a name of letters, digits, '_' and '-' and
 * no tab or line end anywhere; else why not. */
const char *op_reqfile_bad_attr(const char *s);

/* The requests of text[0..len) (text[len] must be '\0'), at most max_attrs
 * attributes each; text is cut into lines in place and the requests point
 * into it.  0, or -1 with f->err set (a malformed line, a NUL byte, too
 * many attributes, no request at all, out of memory): nothing is kept then.
 * Either way op_reqfile_free(f) after. */
int op_reqfile_parse(char *text, size_t len, size_t max_attrs, op_reqfile_t *f);
void op_reqfile_free(op_reqfile_t *f);

#endif
