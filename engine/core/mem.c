#include "core/mem.h"

#include "core/log.h"

#include <stdlib.h>
#include <string.h>

static void *check(void *p, size_t size)
{
    if (p == NULL && size != 0)
        op_panic("out of memory allocating %zu bytes", size);
    return p;
}

void *op_malloc(size_t size) { return check(malloc(size ? size : 1), size); }
void *op_calloc(size_t n, size_t size) { return check(calloc(n ? n : 1, size ? size : 1), n * size); }
void *op_realloc(void *ptr, size_t size) { return check(realloc(ptr, size ? size : 1), size); }

char *op_strdup(const char *s) { return op_strndup(s, strlen(s)); }

char *op_strndup(const char *s, size_t n)
{
    char *d = op_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
