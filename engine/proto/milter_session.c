/* The milter protocol on a session (milter.h): negotiation from the
 * policy's handlers, the phases, the connection's and the message's state.
 * The replies are milter_reply.c's; reading, writing and closing the
 * session's (core/session.c). */
#include "proto/milter.h"

#include "core/log.h"
#include "core/mem.h"
#include "proto/milter_macros.h"
#include "proto/milter_session.h"

#include <lauxlib.h>
#include <string.h>

#define READ_CHUNK 16384
#define PROGRESS_MS 5000 /* while an end-of-message check runs, tell the MTA every 5 s */

static void free_pairs(op_milter_pair_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(p[i].name);
        free(p[i].value);
    }
}

static void free_strings(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void new_lua_table(op_milter_session_t *s, int *ref)
{
    lua_State *L = s->gen->L;
    luaL_unref(L, LUA_REGISTRYINDEX, *ref);
    lua_newtable(L);
    *ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

static void clear_message(op_milter_session_t *s)
{
    free_strings(s->mail_args, s->nmail_args);
    free_strings(s->rcpts, s->nrcpts);
    s->mail_args = s->rcpts = NULL;
    s->nmail_args = s->nrcpts = 0;
    free_pairs(s->headers, s->nheaders);
    free(s->headers);
    s->headers = NULL;
    s->nheaders = s->header_bytes = 0;
    s->overflow = NULL;
    free(s->body);
    s->body = NULL;
    s->body_len = 0;
    free_pairs(s->pending_headers, s->npending_headers);
    free(s->pending_headers);
    s->pending_headers = NULL;
    s->npending_headers = 0;
    free(s->quarantine);
    s->quarantine = NULL;
}

static void clear_connection(op_milter_session_t *s)
{
    clear_message(s);
    free_pairs(s->macros, s->nmacros);
    s->nmacros = 0;
    free(s->hostname);
    free(s->address);
    free(s->helo);
    s->hostname = s->address = s->helo = NULL;
    s->family = 0;
    s->port = 0;
}

/* A new message (MAIL): its envelope, headers, body and Lua state start
 * empty. */
static void reset_message(op_milter_session_t *s)
{
    clear_message(s);
    new_lua_table(s, &s->msg_ref);
}

/* A new SMTP connection on this milter connection (QUIT_NC), or the first. */
static void reset_connection(op_milter_session_t *s)
{
    clear_connection(s);
    new_lua_table(s, &s->msg_ref);
    new_lua_table(s, &s->conn_ref);
}

/* ---- the session's life ---- */

static void milter_free(op_session_t *ss)
{
    op_milter_session_t *s = (op_milter_session_t *)ss;
    free(s->tenant);
    if (s->gen != NULL) {
        clear_connection(s);
        luaL_unref(s->gen->L, LUA_REGISTRYINDEX, s->conn_ref);
        luaL_unref(s->gen->L, LUA_REGISTRYINDEX, s->msg_ref);
        op_gen_unref(s->gen);
    }
}

/* Closing: the handler in flight is cancelled, the progress timer closes
 * with the stream. */
static void milter_cancel(op_session_t *ss)
{
    op_milter_session_t *s = (op_milter_session_t *)ss;
    if (s->req != NULL) {
        op_request_t *req = s->req;
        s->req = NULL;
        op_request_cancel(req);
        op_metrics_request_gone(s->metrics);
    }
    op_session_close_handle(ss, (uv_handle_t *)&s->progress);
}

/* ---- phases ---- */

static void on_phase_done(op_request_t *req, const op_answer_t *a, void *data)
{
    op_milter_session_t *s = data;
    s->req = NULL;
    if (uv_is_active((uv_handle_t *)&s->progress))
        uv_timer_stop(&s->progress);
    op_metrics_answer(s->metrics, a->action, a->action_len, a->check, a->reason,
                      op_session_now_us() - s->req_start_us);
    if (s->gen->cfg->log_decisions)
        op__milter_log_decision(s, req, a);
    if (s->phase != OP_PHASE_ABORT) {
        op_outbuf_need(&s->session.out, a->durable); /* after the counter writes it reports */
        op__milter_reply_verdict(s, a);
    }
    op_session_answered(&s->session);
}

static void on_progress(uv_timer_t *t)
{
    op_milter_session_t *s = t->data;
    op__milter_reply_simple(s, OP_MILTER_R_PROGRESS);
    op_session_flush(&s->session);
}

/* Runs the handler of phase if the policy has one; returns 0 when it did
 * (the reply comes from on_phase_done), -1 when there is none. */
static int run_phase(op_milter_session_t *s, op_phase_t phase, const op_milter_msg_t *m)
{
    if (s->svc->handler_ref[phase] == LUA_NOREF)
        return -1;
    s->phase = phase;
    s->msg = m;
    s->req_start_us = op_session_now_us();
    const char *phase_name = op_phase_handler_name(phase) + 3 /* "on_" */;
    s->metrics = s->metrics_route != NULL
                     ? op_metrics_milter_phase_on(s->metrics_route, phase, phase_name)
                     : op_metrics_milter_phase(s->session.l->name, s->svc->conf->name, s->tenant,
                                               phase_name);
    s->req = op_request_start_phase(s->session.d->loop, s->gen, s->svc, phase, op_milter_push_ctx, s,
                                    on_phase_done, s);
    s->msg = NULL; /* the packet's strings die with the input buffer */
    if (s->req != NULL && phase == OP_PHASE_EOM) {
        s->progress.data = s;
        uv_timer_start(&s->progress, on_progress, PROGRESS_MS, PROGRESS_MS);
    }
    return 0;
}

/* A phase with no handler: continue, if the MTA waits for an answer. */
static void phase(op_milter_session_t *s, op_phase_t ph, const op_milter_msg_t *m)
{
    if (run_phase(s, ph, m) != 0 && op_milter_needs_reply(m->cmd, s->protocol)) {
        if (ph == OP_PHASE_EOM && s->overflow != NULL) {
            op__milter_reply_overflow(s, NULL, 0);
            return;
        }
        if (ph == OP_PHASE_EOM)
            op__milter_apply_modifications(s, NULL, 0);
        op__milter_reply_simple(s, OP_MILTER_R_CONTINUE);
    }
}

static void set_macros(op_milter_session_t *s, const op_milter_msg_t *m)
{
    /* A new message: Postfix leaves out a macro it has no value for, and
     * it has no queue id (i) before the queue file opens (at the first
     * accepted RCPT by default), so the last message's i must not stand
     * for this one's at MAIL and RCPT (decision lines, ctx.macros). */
    if (m->u.macro.stage == 'M')
        for (size_t j = 0; j < s->nmacros; j++)
            if (strcmp(s->macros[j].name, "i") == 0) {
                free(s->macros[j].name);
                free(s->macros[j].value);
                s->macros[j] = s->macros[--s->nmacros];
                break;
            }
    for (size_t i = 0; i < m->u.macro.n; i++) {
        size_t j = 0;
        while (j < s->nmacros && strcmp(s->macros[j].name, m->u.macro.names[i]) != 0)
            j++;
        if (j == s->nmacros) {
            if (s->nmacros == OP_MILTER_MAX_MACROS)
                continue;
            s->macros[s->nmacros++].name = op_strdup(m->u.macro.names[i]);
        } else {
            free(s->macros[j].value);
        }
        s->macros[j].value = op_strdup(m->u.macro.values[i]);
    }
}

static char **copy_strings(const char *const *v, size_t n)
{
    char **out = op_calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = op_strdup(v[i]);
    return out;
}

/* What we ask the MTA for: only the steps a handler needs. */
static void negotiate(op_milter_session_t *s, const op_milter_msg_t *m)
{
    const int *h = s->svc->handler_ref;
    uint32_t skip = OP_MILTER_P_NOUNKNOWN, nr = 0;
    int wants_headers = h[OP_PHASE_HEADER] != LUA_NOREF || h[OP_PHASE_EOH] != LUA_NOREF ||
                        h[OP_PHASE_EOM] != LUA_NOREF;
    if (!wants_headers)
        skip |= OP_MILTER_P_NOHDRS;
    if (h[OP_PHASE_BODY] == LUA_NOREF && s->svc->keep_body == 0)
        skip |= OP_MILTER_P_NOBODY;
    /* Connect, HELO, MAIL and RCPT are cheap and give the context later
     * phases report; they come, but need no answer without a handler. */
    static const struct {
        op_phase_t phase;
        uint32_t flag;
    } nr_map[] = {
        {OP_PHASE_CONNECT, OP_MILTER_P_NR_CONN}, {OP_PHASE_HELO, OP_MILTER_P_NR_HELO},
        {OP_PHASE_MAIL, OP_MILTER_P_NR_MAIL},    {OP_PHASE_RCPT, OP_MILTER_P_NR_RCPT},
        {OP_PHASE_DATA, OP_MILTER_P_NR_DATA},    {OP_PHASE_HEADER, OP_MILTER_P_NR_HDR},
        {OP_PHASE_EOH, OP_MILTER_P_NR_EOH},      {OP_PHASE_BODY, OP_MILTER_P_NR_BODY},
    };
    for (size_t i = 0; i < sizeof nr_map / sizeof nr_map[0]; i++)
        if (h[nr_map[i].phase] == LUA_NOREF)
            nr |= nr_map[i].flag;
    uint32_t want = OP_MILTER_F_ADDHDRS | OP_MILTER_F_CHGHDRS | OP_MILTER_F_QUARANTINE;
    const op_milter_symlists_t *sl = op_milter_symlists(s->svc);
    if (sl != NULL && sl->set)
        want |= OP_MILTER_F_SETSYMLIST;
    op_milter_options_t mta = {m->u.optneg.version, m->u.optneg.actions, m->u.optneg.protocol}, o;
    op_milter_negotiate(&mta, want, skip, nr, &o);
    s->protocol = o.protocol;
    s->actions = o.actions;
    /* The macros the policy declared, per stage, if the MTA takes lists
     * (Postfix does; the lists replace its milter_*_macros). */
    const char *lists[OP_MILTER_M_COUNT] = {NULL};
    if (o.actions & OP_MILTER_F_SETSYMLIST)
        for (int st = 0; st < OP_MILTER_M_COUNT; st++)
            if (sl->set & (1u << st))
                lists[st] = sl->lists[st];
    size_t cap = 5 + 12;
    for (int st = 0; st < OP_MILTER_M_COUNT; st++)
        cap += lists[st] ? 4 + strlen(lists[st]) + 1 : 0;
    char *p = op_outbuf_reserve(&s->session.out, cap);
    op_outbuf_commit(&s->session.out, op_milter_encode_optneg(p, cap, &o, lists));
}

static void handle(op_milter_session_t *s, const op_milter_msg_t *m)
{
    switch (m->cmd) {
    case OP_MILTER_OPTNEG:
        negotiate(s, m);
        break;
    case OP_MILTER_MACRO:
        set_macros(s, m);
        break;
    case OP_MILTER_CONNECT:
        free(s->hostname);
        free(s->address);
        s->hostname = op_strdup(m->u.connect.hostname);
        s->address = op_strdup(m->u.connect.address);
        s->family = m->u.connect.family;
        s->port = m->u.connect.port;
        phase(s, OP_PHASE_CONNECT, m);
        break;
    case OP_MILTER_HELO:
        free(s->helo);
        s->helo = op_strdup(m->u.helo.name);
        phase(s, OP_PHASE_HELO, m);
        break;
    case OP_MILTER_MAIL:
        reset_message(s);
        s->mail_args = copy_strings(m->u.envelope.args, m->u.envelope.nargs);
        s->nmail_args = m->u.envelope.nargs;
        phase(s, OP_PHASE_MAIL, m);
        break;
    case OP_MILTER_RCPT:
        if (s->nrcpts < OP_MILTER_MAX_RCPTS) {
            s->rcpts = op_realloc(s->rcpts, (s->nrcpts + 1) * sizeof *s->rcpts);
            s->rcpts[s->nrcpts++] = op_strdup(m->u.envelope.args[0]);
        }
        phase(s, OP_PHASE_RCPT, m);
        break;
    case OP_MILTER_DATA:
        phase(s, OP_PHASE_DATA, m);
        break;
    case OP_MILTER_HEADER: {
        size_t bytes = strlen(m->u.header.name) + strlen(m->u.header.value);
        /* Once a field is left out, none after it is kept either: the
         * handlers would otherwise read a header with a hole in it. */
        if (s->overflow == NULL && s->nheaders == OP_MILTER_MAX_HEADERS)
            s->overflow = "more than 1000 header fields";
        else if (s->overflow == NULL && s->header_bytes + bytes > OP_MILTER_MAX_HEADER_BYTES)
            s->overflow = "a header of more than 256 KiB";
        if (s->overflow == NULL) {
            s->headers = op_realloc(s->headers, (s->nheaders + 1) * sizeof *s->headers);
            s->headers[s->nheaders].name = op_strdup(m->u.header.name);
            s->headers[s->nheaders].value = op_strdup(m->u.header.value);
            s->nheaders++;
            s->header_bytes += bytes;
        }
        phase(s, OP_PHASE_HEADER, m);
        break;
    }
    case OP_MILTER_EOH:
        phase(s, OP_PHASE_EOH, m);
        break;
    case OP_MILTER_BODY:
    case OP_MILTER_EOM:
        if (s->body_len < s->svc->keep_body && m->u.body.len > 0) {
            size_t take = s->svc->keep_body - s->body_len;
            if (take > m->u.body.len)
                take = m->u.body.len;
            s->body = op_realloc(s->body, s->body_len + take + 1);
            memcpy(s->body + s->body_len, m->u.body.data, take);
            s->body_len += take;
            s->body[s->body_len] = '\0';
        }
        phase(s, m->cmd == OP_MILTER_BODY ? OP_PHASE_BODY : OP_PHASE_EOM, m);
        break;
    case OP_MILTER_ABORT:
        run_phase(s, OP_PHASE_ABORT, m);
        break;
    case OP_MILTER_UNKNOWN:
        if (op_milter_needs_reply(m->cmd, s->protocol))
            op__milter_reply_simple(s, OP_MILTER_R_CONTINUE);
        break;
    case OP_MILTER_QUIT_NC:
        reset_connection(s);
        break;
    case OP_MILTER_QUIT:
        break;
    }
}

/* One packet at a time: while a handler runs, later packets wait, so
 * phases are answered in order and an abort finds nothing in flight. */
static int milter_can_take(const op_session_t *ss)
{
    return ((const op_milter_session_t *)ss)->req == NULL;
}

/* Stop reading while a handler runs and the buffer holds a whole packet
 * more; the MTA does not send much ahead of an answer. */
static int milter_may_read(const op_session_t *ss)
{
    return milter_can_take(ss) || ss->in_len < READ_CHUNK;
}

static int milter_busy(const op_session_t *ss)
{
    return !milter_can_take(ss);
}

static ssize_t milter_feed(op_session_t *ss, const char *in, size_t len)
{
    op_milter_session_t *s = (op_milter_session_t *)ss;
    op_milter_msg_t m;
    ssize_t r = op_milter_parse(&s->parser, in, len, &m);
    if (r < 0) {
        op_warn("milter %s (listener %s): %s in state %s; closing the connection", ss->peer,
                ss->l->name, op_milter_strerror(r), op_milter_state_name(s->parser.state));
        return -1;
    }
    if (r == 0)
        return 0;
    handle(s, &m);
    if (m.cmd == OP_MILTER_QUIT)
        ss->finish = 1;
    return r;
}

/* The drain deadline passed: the handler in flight answers its default
 * action now. */
static void milter_abort_inflight(op_session_t *ss)
{
    op_milter_session_t *s = (op_milter_session_t *)ss;
    if (s->req != NULL)
        op_request_abort(s->req, "shutdown");
}

static int milter_open(op_session_t *ss)
{
    op_milter_session_t *s = (op_milter_session_t *)ss;
    op_listener_t *l = ss->l;
    op_gen_t *gen = ss->d->current;
    const op_gen_service_t *svc = op_gen_service(gen, l->service);
    if (svc == NULL) {
        op_warn("milter listener %s: its service is not in the current configuration; "
                "refusing the connection", l->name);
        return -1;
    }
    s->gen = gen;
    op_gen_ref(gen);
    s->svc = svc;
    s->tenant = op_strdup(l->tenant);
    s->metrics_route = l->metrics; /* the labels of l->service and l->tenant, read together */
    s->conn_ref = s->msg_ref = LUA_NOREF;
    reset_connection(s);
    /* the listener names the MTA: one milter connection per SMTP connection */
    snprintf(ss->peer, sizeof ss->peer, "%s:%s", l->kind == OP_LISTEN_UNIX ? "unix" : "tcp",
             l->name);
    op_milter_parser_init(&s->parser, NULL);
    ss->in_max = s->parser.limits.max_packet + 2 * READ_CHUNK;
    uv_timer_init(ss->d->loop, &s->progress);
    return 0;
}

const op_session_ops_t op_milter_session_ops = {
    .name = "milter",
    .size = sizeof(op_milter_session_t),
    .read_chunk = READ_CHUNK,
    .open = milter_open,
    .can_take = milter_can_take,
    .feed = milter_feed,
    .may_read = milter_may_read,
    .busy = milter_busy,
    .abort = milter_abort_inflight,
    .cancel = milter_cancel,
    .free = milter_free,
};
