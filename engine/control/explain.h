/* Explain: one request run through a generation in dry-run mode, and its
 * trace rendered (outpostctl explain, outpostd ask --dry-run; docs/
 * operations.md, "Explain").  The request carries a trace (core/trace.h),
 * so the primitives record what they did, and those that write peek or
 * skip: no counter changes, no transaction link is written. */
#ifndef OP_EXPLAIN_H
#define OP_EXPLAIN_H

#include "core/request.h"
#include "core/vm.h"

#include <uv.h>

/* The rendered explanation (malloc'ed, "ok\n"-less: the body) or an
 * error; status 0, or the exit status for outpostctl (1, 2). */
typedef void (*op_explain_cb)(char *text, int status, void *data);

/* Runs attrs (name=value strings, "name=value" each) through service of
 * gen for tenant.  service NULL or "": the request's policy_context
 * (SERVICE or SERVICE:TENANT), else the generation's only service.
 * Returns 1 when cb fired already (the policy answered without waiting),
 * 0 when it will fire later from the loop.  cb always fires once. */
int op_explain_run(uv_loop_t *loop, op_gen_t *gen, const char *service, const char *tenant,
                   char **attrs, size_t nattrs, int json, op_explain_cb cb, void *data);

/* Set by the daemon: its loop and how to find the current generation, for
 * the control socket's explain command.  NULL: no daemon (outpostd test). */
void op_explain_set_daemon(uv_loop_t *loop, op_gen_t *(*current)(void *data), void *data);
/* The daemon's, or NULL. */
uv_loop_t *op_explain_loop(void);
op_gen_t *op_explain_current(void);

#endif
