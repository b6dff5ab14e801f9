/* A milter service's settings from its policy: the macros it asks the
 * MTA for (policy.macros), as SMFIR_SETSYMLIST lists.  The generation
 * reads them at load through op_milter_gen_proto and keeps them in the
 * service's proto slot; only the milter protocol reads them. */
#ifndef OP_MILTER_MACROS_H
#define OP_MILTER_MACROS_H

#include "core/vm.h"
#include "proto/proto_milter.h"

/* A stage is asked for only if its bit in set is on (an empty list asks
 * for none). */
typedef struct {
    char lists[OP_MILTER_M_COUNT][OP_MILTER_SYMLIST_MAX + 1];
    unsigned set;
} op_milter_symlists_t;

/* The reader op_gen_create takes. */
extern const op_gen_proto_t op_milter_gen_proto;

/* The symbol lists of svc, or NULL when its policy declares none. */
const op_milter_symlists_t *op_milter_symlists(const op_gen_service_t *svc);

#endif
