/* A binding's one-record spare for its pending records (lua_api_dns.c,
 * lua_api_ldap.c).
 *
 * A lookup answered at once (a cache hit, a refusal) hands its record
 * back here instead of to free(), and the next lookup takes it: a hit
 * allocates nothing (issue 20, docs/performance.md).  One record is
 * enough: Lua runs on the loop's thread only, and a lookup answered at
 * once is done with its record before another can start.  A lookup that
 * waits keeps its record; its completion or cancel frees it. */
#ifndef OP_LUA_API_SPARE_H
#define OP_LUA_API_SPARE_H

#include "core/mem.h"

#include <string.h>

/* A zeroed record of size bytes: the spare, or a new one. */
static inline void *op_spare_take(void **spare, size_t size)
{
    void *rec = *spare;
    if (rec == NULL)
        return op_calloc(1, size);
    *spare = NULL;
    memset(rec, 0, size);
    return rec;
}

/* rec becomes the spare, or is freed when there is one. */
static inline void op_spare_give_back(void **spare, void *rec)
{
    if (*spare == NULL)
        *spare = rec;
    else
        free(rec);
}

#endif
