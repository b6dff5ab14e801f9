/* The trace of a request run in dry-run mode (outpostctl explain, outpostd
 * ask --dry-run): every check in order with its mode, verdict and time,
 * and under each check the steps it made (lookups with their source and
 * time, counter peeks, writes skipped).
 *
 * A request has a trace only when it is explained (op_request_t.trace);
 * the primitives test that one pointer and do nothing more otherwise, so
 * an ordinary request pays nothing.  A non-NULL trace is also the dry-run
 * flag: writing primitives (outpost.limit, outpost.txnlink) peek or skip.
 *
 * Pure bookkeeping: no Lua, no I/O.  Rendered as text for people or as
 * one JSON object. */
#ifndef OP_TRACE_H
#define OP_TRACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct op_trace op_trace_t;

op_trace_t *op_trace_new(void);
void op_trace_free(op_trace_t *t);

/* A check starts (the pipeline, lua/lib/outpost/pipeline.lua): steps
 * recorded until op_trace_check_end belong to it. */
void op_trace_check_begin(op_trace_t *t, const char *id, const char *description,
                          const char *mode);
/* verdict: pass, answer, log-only, tag, off, skipped, not-reached;
 * text: the action it answered (or would have), or why it did not run. */
void op_trace_check_end(op_trace_t *t, const char *verdict, const char *text);

/* A step of the current check: kind ("dns", "ldap", "smtp", "limit",
 * "txnlink"), what it asked, where the answer came from ("cache",
 * "server", "store", "skipped"; NULL when it does not apply).  Returns
 * the step's index for op_trace_step_end when the answer comes later
 * (elapsed runs from now), or -1 when t is NULL. */
int op_trace_step(op_trace_t *t, const char *kind, const char *query, const char *source);
/* The step's result (a summary for people) and its time; source may
 * change it (NULL: keep). */
void op_trace_step_end(op_trace_t *t, int step, const char *source, const char *result);
/* A number or a word more for the step (JSON reads them by key). */
void op_trace_step_num(op_trace_t *t, int step, const char *key, int64_t value);
void op_trace_step_str(op_trace_t *t, int step, const char *key, const char *value);

/* The final answer and the trace, rendered into a malloc'ed string.
 * action: the exact text the MTA would get (action=...); check, reason
 * as the decision log has them. */
char *op_trace_render(const op_trace_t *t, int json, const char *service, const char *tenant,
                      uint64_t generation, const char *action, const char *check,
                      const char *reason, uint64_t elapsed_us);

uint64_t op_trace_now_us(void);

#endif
