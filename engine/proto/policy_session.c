/* The policy delegation protocol on a session (policy_session.h): one
 * request per query, answers in the order the queries came, the decision
 * log.  Reading, writing and closing are the session's (core/session.c). */
#include "proto/policy_session.h"

#include "core/log.h"
#include "core/metrics.h"
#include "core/mem.h"
#include "core/request.h"
#include "core/session.h"
#include "proto/proto_policy.h"

#include <stdio.h>
#include <string.h>

/* Postfix sends one query and waits for its answer, so more than a few in
 * flight on one connection means a client pipelining hard: stop reading
 * until answers drain. */
#define MAX_INFLIGHT 16
#define READ_CHUNK 8192

/* The request's attributes a decision line shows, copied at dispatch (the
 * parser's buffer is reused by the next query): key, Postfix's name, and
 * the bytes kept (the longest a real value has, 200 for addresses). */
static const struct {
    const char *key, *attr;
    unsigned max;
} who_fields[] = {
    {"client", "client_address", 64}, {"sasl_user", "sasl_username", 200},
    {"sender", "sender", 200},        {"rcpt", "recipient", 200},
    /* after the answer's fields: Postfix's queue id (empty at RCPT before
     * the queue file exists), its instance (one per transaction) and the
     * SMTP state; docs/operations.md#logs */
    {"queue_id", "queue_id", 40},     {"instance", "instance", 40},
    {"protocol_state", "protocol_state", 16},
};
#define WHO_N (sizeof who_fields / sizeof who_fields[0])
#define WHO_BEFORE_ACTION 4
#define WHO_MAX (64 + 3 * 200 + 40 + 40 + 16)

typedef struct op_policy_session op_policy_session_t;

typedef struct {
    op_policy_session_t *conn;
    op_request_t *req; /* while the request runs after op_request_start returned */
    int ready;         /* answered; reply holds the encoded answer if not yet sent */
    char *reply;
    size_t reply_len;
    uint64_t durable;  /* the answer's durability ticket (core/durable.h) */
    uint64_t start_us;
    char who[WHO_MAX]; /* the decision log's who_fields, back to back, captured at dispatch */
    unsigned short who_len[WHO_N];
    char tenant[72];   /* the request's (a name, at most 64 bytes): the listener's may change on reload */
    op_metrics_req_t metrics;
} slot_t;

struct op_policy_session {
    op_session_t session; /* first: the session layer allocates and frees the whole */
    op_policy_parser_t parser;
    slot_t slots[MAX_INFLIGHT];
    unsigned head, count;
    int log_decisions;
};

/* The session closes: requests in flight are cancelled (their answers
 * would have nowhere to go). */
static void policy_cancel(op_session_t *ss)
{
    op_policy_session_t *c = (op_policy_session_t *)ss;
    for (unsigned i = 0; i < MAX_INFLIGHT; i++) {
        slot_t *s = &c->slots[i];
        if (s->req != NULL) {
            op_request_t *req = s->req;
            s->req = NULL;
            op_request_cancel(req);
            op_metrics_request_gone(s->metrics);
        }
        free(s->reply);
        s->reply = NULL;
    }
}

static void policy_free(op_session_t *ss)
{
    op_policy_session_t *c = (op_policy_session_t *)ss;
    op_policy_parser_free(&c->parser);
}

static void out_append_answer(op_policy_session_t *c, const char *action, size_t len)
{
    size_t need = len + 16;
    if (need > OP_POLICY_MAX_ACTION + 16)
        need = OP_POLICY_MAX_ACTION + 16;
    size_t n = op_policy_encode(op_outbuf_reserve(&c->session.out, need), need, action, len);
    OP_ASSERT(n > 0);
    op_outbuf_commit(&c->session.out, n);
}

/* Moves answered slots at the head, in order, to the output buffer. */
static void drain_ready_slots(op_policy_session_t *c)
{
    while (c->count > 0 && c->slots[c->head].ready) {
        slot_t *s = &c->slots[c->head];
        if (s->reply != NULL) {
            op_outbuf_need(&c->session.out, s->durable);
            op_outbuf_append(&c->session.out, s->reply, s->reply_len);
            free(s->reply);
            s->reply = NULL;
        }
        s->ready = 0;
        c->head = (c->head + 1) % MAX_INFLIGHT;
        c->count--;
    }
}

/* One decision line, structured (log.h renders it for the target):
 * "decision req=42 service=postout tenant=lrz client=... action=...
 * check=PO3 reason=policy elapsed_us=312 gen=3 queue_id=... instance=...
 * protocol_state=RCPT".  The order is the one readers grep for; fields
 * added later go at the end. */
static void log_decision(slot_t *s, op_request_t *req, const op_answer_t *a)
{
    char serial[24], elapsed[24], gen[24];
    op_log_field_t f[8 + WHO_N];
    size_t n = 0;
#define NUM(k, buf, v)                                                                             \
    f[n++] = (op_log_field_t){k, buf, (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)(v)), \
                              OP_LF_NUM, 0}
#define STR(k, v) f[n++] = (op_log_field_t){k, v, strlen(v), 0, 0}
    NUM("req", serial, req->serial);
    STR("service", req->service->conf->name);
    STR("tenant", *s->tenant ? s->tenant : "-");
    const char *w = s->who;
    size_t i = 0;
    for (; i < WHO_BEFORE_ACTION; w += s->who_len[i], i++)
        f[n++] = (op_log_field_t){who_fields[i].key, w, s->who_len[i], 0, who_fields[i].max};
    f[n++] = (op_log_field_t){"action", a->action, a->action_len, 0, 0};
    STR("check", a->check);
    STR("reason", a->reason);
    NUM("elapsed_us", elapsed, op_session_now_us() - s->start_us);
    NUM("gen", gen, req->gen->number);
    for (; i < WHO_N; w += s->who_len[i], i++)
        f[n++] = (op_log_field_t){who_fields[i].key, w, s->who_len[i], 0, who_fields[i].max};
#undef NUM
#undef STR
    op_log_fields(OP_LOG_INFO, "decision", f, n);
}

/* Records the answer of slot s; answers leave in the order the queries
 * came, so an answer waits in its slot until those before it are out. */
static void complete_slot(op_policy_session_t *c, slot_t *s, const op_answer_t *a)
{
    s->req = NULL;
    s->ready = 1;
    op_metrics_answer(s->metrics, a->action, a->action_len, a->check, a->reason,
                      op_session_now_us() - s->start_us);
    if (s == &c->slots[c->head]) {
        op_outbuf_need(&c->session.out, a->durable); /* after the counter writes it reports */
        out_append_answer(c, a->action, a->action_len);
        s->ready = 0;
        c->head = (c->head + 1) % MAX_INFLIGHT;
        c->count--;
        drain_ready_slots(c);
    } else {
        size_t cap = a->action_len + 16;
        s->reply = op_malloc(cap);
        s->reply_len = op_policy_encode(s->reply, cap, a->action, a->action_len);
        s->durable = a->durable;
    }
    op_session_answered(&c->session);
}

static void on_done(op_request_t *req, const op_answer_t *a, void *data)
{
    slot_t *s = data;
    if (s->conn->log_decisions)
        log_decision(s, req, a);
    complete_slot(s->conn, s, a);
}

static const op_policy_attr_t *find_attr(const op_policy_attr_t *a, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < n; i++)
        if (a[i].name_len == len && memcmp(a[i].name, name, len) == 0)
            return &a[i];
    return NULL;
}

static void capture_who(slot_t *s, const op_policy_attr_t *a, size_t n)
{
    size_t at = 0;
    for (size_t i = 0; i < WHO_N; i++) {
        const op_policy_attr_t *v = find_attr(a, n, who_fields[i].attr);
        size_t len = v ? v->value_len : 0;
        if (len > who_fields[i].max)
            len = who_fields[i].max;
        OP_ASSERT(at + len <= WHO_MAX);
        memcpy(s->who + at, v ? v->value : "", len);
        s->who_len[i] = (unsigned short)len;
        at += len;
    }
}

static void dispatch(op_policy_session_t *c)
{
    op_session_t *ss = &c->session;
    static op_request_attr_t *attrs;
    static size_t attrs_cap;
    size_t n = op_policy_nattrs(&c->parser);
    const op_policy_attr_t *pa = op_policy_attrs(&c->parser);
    if (attrs_cap < n) {
        attrs = op_realloc(attrs, n * sizeof *attrs);
        attrs_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        attrs[i] = (op_request_attr_t){pa[i].name, pa[i].name_len, pa[i].value, pa[i].value_len};

    const op_policy_attr_t *ctx = find_attr(pa, n, "policy_context");
    const char *service_name, *tenant;
    int allowed = op_listener_route(ss->l, ctx ? ctx->value : NULL, ctx ? ctx->value_len : 0,
                                    &service_name, &tenant);
    op_gen_t *gen = ss->d->current;
    const op_gen_service_t *svc = op_gen_service(gen, service_name);

    slot_t *s = &c->slots[(c->head + c->count) % MAX_INFLIGHT];
    c->count++;
    s->conn = c;
    s->ready = 0;
    s->req = NULL;
    s->start_us = op_session_now_us();
    snprintf(s->tenant, sizeof s->tenant, "%s", tenant);
    /* The listener's own binding has its labels resolved; a policy_context
     * that picks another service is looked up (core/metrics.h). */
    if (service_name == ss->l->service && tenant == ss->l->tenant && ss->l->metrics != NULL)
        s->metrics = op_metrics_request_on(ss->l->metrics);
    else
        s->metrics = op_metrics_request(ss->l->name, service_name, s->tenant, "policy");
    c->log_decisions = gen->cfg->log_decisions;
    if (c->log_decisions)
        capture_who(s, pa, n);

    if (allowed < 0) {
        /* Never another service's policy: the answer the listener gives
         * to a context it does not list, and a line once a minute. */
        op_listener_unknown_context(ss->l, ss->peer, ctx->value, ctx->value_len, uv_now(ss->d->loop));
        const char *act = ss->l->unknown_action;
        op_answer_t a = {act, strlen(act), "-", "unknown-context", NULL, 0, 0};
        complete_slot(c, s, &a);
        return;
    }
    if (svc == NULL) {
        /* The listener names a service the current configuration no longer
         * has: answer a safe temporary failure, never a crash. */
        static const char fallback[] = "451 4.3.5 policy service not configured";
        op_error("connection %s: listener %s: no service '%s' in the current configuration; "
                 "answering \"%s\"", ss->peer, ss->l->name, service_name, fallback);
        op_answer_t a = {fallback, sizeof fallback - 1, "-", "no-service", NULL, 0, 0};
        complete_slot(c, s, &a);
        return;
    }
    /* NULL when the policy answered at once (done already ran). */
    s->req = op_request_start(ss->d->loop, gen, svc, s->tenant, ss->l->name, attrs, n, on_done, s);
}

static int policy_can_take(const op_session_t *ss)
{
    return ((const op_policy_session_t *)ss)->count < MAX_INFLIGHT;
}

/* Postfix sends one query and waits: more in flight is a client
 * pipelining hard, which waits until answers drain. */
static int policy_may_read(const op_session_t *ss)
{
    return policy_can_take(ss);
}

static int policy_busy(const op_session_t *ss)
{
    return ((const op_policy_session_t *)ss)->count > 0;
}

static ssize_t policy_feed(op_session_t *ss, const char *in, size_t len)
{
    op_policy_session_t *c = (op_policy_session_t *)ss;
    ssize_t r = op_policy_parse(&c->parser, in, len);
    if (r < 0) {
        op_warn("connection %s (listener %s): malformed request: %s; closing the "
                "connection without a reply",
                ss->peer, ss->l->name, op_policy_strerror(r));
        return -1;
    }
    if (r > 0)
        dispatch(c);
    return r;
}

/* The drain deadline passed: each request in flight answers its default
 * action now (on_done runs). */
static void policy_abort_inflight(op_session_t *ss)
{
    op_policy_session_t *c = (op_policy_session_t *)ss;
    for (unsigned i = 0; i < MAX_INFLIGHT; i++) {
        slot_t *s = &c->slots[i];
        if (s->req != NULL)
            op_request_abort(s->req, "shutdown");
    }
}

static int policy_open(op_session_t *ss)
{
    op_policy_session_t *c = (op_policy_session_t *)ss;
    const op_config_t *cfg = ss->d->current->cfg;
    op_policy_limits_t lim = {cfg->max_line, cfg->max_attrs, cfg->max_request};
    op_policy_parser_init(&c->parser, &lim);
    ss->in_max = cfg->max_request + 2 * READ_CHUNK;
    return 0;
}

const op_session_ops_t op_policy_session_ops = {
    .name = "connection",
    .size = sizeof(op_policy_session_t),
    .read_chunk = READ_CHUNK,
    .open = policy_open,
    .can_take = policy_can_take,
    .feed = policy_feed,
    .may_read = policy_may_read,
    .busy = policy_busy,
    .abort = policy_abort_inflight,
    .cancel = policy_cancel,
    .free = policy_free,
};
