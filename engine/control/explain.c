/* Explain (explain.h): a request in dry-run mode and its rendered trace. */
#include "control/explain.h"

#include "core/log.h"
#include "core/mem.h"
#include "core/trace.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ACTION 1000 /* OP_POLICY_MAX_ACTION */

static uv_loop_t *daemon_loop;
static op_gen_t *(*daemon_current)(void *);
static void *daemon_data;

void op_explain_set_daemon(uv_loop_t *loop, op_gen_t *(*current)(void *data), void *data)
{
    daemon_loop = loop;
    daemon_current = current;
    daemon_data = data;
}

uv_loop_t *op_explain_loop(void)
{
    return daemon_loop;
}

op_gen_t *op_explain_current(void)
{
    return daemon_current != NULL ? daemon_current(daemon_data) : NULL;
}

/* One explanation in flight: the request's attributes (copies), its trace. */
typedef struct {
    op_request_attr_t *attrs;
    size_t nattrs;
    char *strings;
    op_trace_t *trace;
    char service[128], tenant[128];
    uint64_t generation, start_us;
    int json;
    op_explain_cb cb;
    void *data;
    int fired;
} explain_t;

static void fail(op_explain_cb cb, void *data, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void fail(op_explain_cb cb, void *data, int status, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cb(op_strdup(msg), status, data);
}

static void explain_free(explain_t *x)
{
    op_trace_free(x->trace);
    free(x->attrs);
    free(x->strings);
    free(x);
}

static void on_done(op_request_t *req, const op_answer_t *a, void *data)
{
    explain_t *x = data;
    /* the exact text the MTA would read after "action=": cut and cleaned as
     * the policy codec encodes it (proto/proto_policy.c, op_policy_encode) */
    char action[MAX_ACTION + 1];
    size_t n = a->action_len < MAX_ACTION ? a->action_len : MAX_ACTION;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)a->action[i];
        action[i] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
    }
    action[n] = '\0';
    uint64_t elapsed = op_trace_now_us() - x->start_us;
    char *text = op_trace_render(x->trace, x->json, x->service, x->tenant, x->generation, action,
                                 a->check, a->reason, elapsed);
    op_info("explain req=%llu service=%s tenant=%s action=\"%s\" check=%s reason=%s "
            "elapsed_us=%llu gen=%llu (dry run)",
            (unsigned long long)req->serial, x->service, *x->tenant ? x->tenant : "-", action,
            a->check, a->reason, (unsigned long long)elapsed, (unsigned long long)x->generation);
    req->trace = NULL; /* freed with x, before the request's end */
    op_explain_cb cb = x->cb;
    void *cbdata = x->data;
    explain_free(x);
    cb(text, 0, cbdata);
}

static const char *find_attr(char **attrs, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (strncmp(attrs[i], name, len) == 0 && attrs[i][len] == '=')
            return attrs[i] + len + 1;
    return NULL;
}

int op_explain_run(uv_loop_t *loop, op_gen_t *gen, const char *service, const char *tenant,
                   char **attrs, size_t nattrs, int json, op_explain_cb cb, void *data)
{
    if (gen == NULL) {
        fail(cb, data, 1, "explain: no generation is loaded");
        return 1;
    }
    char svc[128] = "", ten[128] = "";
    snprintf(svc, sizeof svc, "%s", service ? service : "");
    snprintf(ten, sizeof ten, "%s", tenant ? tenant : "");
    const char *ctx = find_attr(attrs, nattrs, "policy_context");
    if (svc[0] == '\0' && ctx != NULL && *ctx) {
        /* SERVICE or SERVICE:TENANT, as a listener's allow_context reads it */
        const char *colon = strchr(ctx, ':');
        snprintf(svc, sizeof svc, "%.*s", colon ? (int)(colon - ctx) : (int)strlen(ctx), ctx);
        if (colon != NULL && ten[0] == '\0')
            snprintf(ten, sizeof ten, "%s", colon + 1);
    }
    if (svc[0] == '\0') {
        if (gen->cfg->nservices != 1) {
            fail(cb, data, 2, "explain: which service? name it (--service NAME) or send "
                              "policy_context=SERVICE; this configuration has %zu services",
                 gen->cfg->nservices);
            return 1;
        }
        snprintf(svc, sizeof svc, "%s", gen->cfg->services[0].name);
    }
    const op_gen_service_t *gs = op_gen_service(gen, svc);
    if (gs == NULL) {
        fail(cb, data, 1, "explain: no service '%s' in the current configuration", svc);
        return 1;
    }
    if (!op_request_has_handler(gs, OP_PHASE_REQUEST)) {
        fail(cb, data, 1, "explain: service '%s' has no on_request (a milter-only policy: "
                          "explain runs the policy delegation request)", svc);
        return 1;
    }
    size_t bytes = 0;
    for (size_t i = 0; i < nattrs; i++) {
        const char *eq = strchr(attrs[i], '=');
        if (eq == NULL || eq == attrs[i]) {
            fail(cb, data, 2, "explain: '%s' is not NAME=VALUE", attrs[i]);
            return 1;
        }
        bytes += strlen(attrs[i]) + 1;
    }
    explain_t *x = op_calloc(1, sizeof *x);
    x->attrs = op_calloc(nattrs + 1, sizeof *x->attrs);
    x->strings = op_malloc(bytes + 1);
    char *p = x->strings;
    for (size_t i = 0; i < nattrs; i++) {
        size_t len = strlen(attrs[i]);
        memcpy(p, attrs[i], len + 1);
        char *eq = strchr(p, '=');
        x->attrs[i] = (op_request_attr_t){p, (size_t)(eq - p), eq + 1, len - (size_t)(eq - p) - 1};
        p += len + 1;
    }
    x->nattrs = nattrs;
    x->trace = op_trace_new();
    snprintf(x->service, sizeof x->service, "%s", svc);
    snprintf(x->tenant, sizeof x->tenant, "%s", ten);
    x->generation = gen->number;
    x->start_us = op_trace_now_us();
    x->json = json;
    x->cb = cb;
    x->data = data;
    op_request_t *req = op_request_explain(loop, gen, gs, x->tenant, "explain", x->attrs,
                                           x->nattrs, x->trace, on_done, x);
    return req == NULL;
}
