/* Allocation that never returns NULL: out of memory is not a condition a
 * policy daemon can answer sensibly, so it aborts (as Postfix's mymalloc). */
#ifndef OP_MEM_H
#define OP_MEM_H

#include <stddef.h>
#include <stdlib.h> /* free() pairs with op_malloc() */

void *op_malloc(size_t size);
void *op_calloc(size_t n, size_t size);
void *op_realloc(void *ptr, size_t size);
char *op_strdup(const char *s);
char *op_strndup(const char *s, size_t n);

#endif
