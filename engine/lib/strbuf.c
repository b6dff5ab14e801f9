#include "lib/strbuf.h"

#include "core/log_format.h"
#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void op_sb_init(op_sb_t *b, size_t cap)
{
    b->cap = cap ? cap : 256;
    b->p = op_malloc(b->cap);
    b->n = 0;
    b->p[0] = '\0';
}

static void reserve(op_sb_t *b, size_t more)
{
    if (b->n + more < b->cap)
        return;
    b->cap = b->cap * 2 + more + 256;
    b->p = op_realloc(b->p, b->cap);
}

void op_sb_printf(op_sb_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (n < 0) /* an encoding error: keep what was there */
            return;
        if (b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        reserve(b, (size_t)n + 1);
    }
}

void op_sb_json(op_sb_t *b, const char *s)
{
    size_t len = s ? strlen(s) : 0;
    /* the widest escape is 6 bytes a byte; the formatter also wants room
     * for the quotes, the NUL and its own margin */
    reserve(b, len * 6 + 16);
    b->n = op_log_fmt_json_str(b->p, b->n, b->cap, s ? s : "", len);
}
