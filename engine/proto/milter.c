#include "proto/milter.h"

#include "core/log.h"
#include "core/mem.h"
#include "proto/milter_macros.h"
#include "proto/milter_session.h"
#include "proto/milter_verdict.h"

#include <lauxlib.h>
#include <string.h>
#include <time.h>

#define READ_CHUNK 16384
#define PROGRESS_MS 5000 /* while an end-of-message check runs, tell the MTA every 5 s */

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

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

static void on_closed(uv_handle_t *h)
{
    op_milter_session_t *s = h->data;
    op_daemon_t *d = s->d;
    if (s->prev)
        s->prev->next = s->next;
    else
        d->milters = s->next;
    if (s->next)
        s->next->prev = s->prev;
    d->nconns--;
    op_listener_unref(s->l);
    free(s->in);
    op_outbuf_free(&s->out);
    free(s->tenant);
    if (s->gen != NULL) {
        clear_connection(s);
        luaL_unref(s->gen->L, LUA_REGISTRYINDEX, s->conn_ref);
        luaL_unref(s->gen->L, LUA_REGISTRYINDEX, s->msg_ref);
        op_gen_unref(s->gen);
    }
    free(s);
    op_daemon_conn_closed(d);
}

static void on_progress_closed(uv_handle_t *h)
{
    op_milter_session_t *s = h->data;
    s->h.handle.data = s;
    uv_close(&s->h.handle, on_closed);
}

static void session_close(op_milter_session_t *s)
{
    if (s->closing)
        return;
    s->closing = 1;
    if (s->req != NULL) {
        op_request_t *req = s->req;
        s->req = NULL;
        op_request_cancel(req);
    }
    s->progress.data = s;
    uv_close((uv_handle_t *)&s->progress, on_progress_closed);
}

static void process_input(op_milter_session_t *s);

static void flush(op_milter_session_t *s)
{
    if (s->closing)
        return;
    int rc = op_outbuf_flush(&s->out);
    if (rc != 0) {
        op_info("milter %s: write failed: %s", s->peer, uv_strerror(rc));
        session_close(s);
    }
}

static void on_written(op_outbuf_t *ob, int status)
{
    op_milter_session_t *s = ob->data;
    if (s->closing)
        return;
    if (status < 0) {
        op_info("milter %s: write failed: %s", s->peer, uv_strerror(status));
        session_close(s);
        return;
    }
    flush(s);
    if (!s->processing)
        process_input(s);
}

/* ---- replies ---- */

static void reply_simple(op_milter_session_t *s, char r)
{
    op_outbuf_commit(&s->out, op_milter_encode_simple(op_outbuf_reserve(&s->out, 8), 8, r));
}

static void reply_code(op_milter_session_t *s, int code, const char *status, const char *text,
                       size_t len)
{
    char t[1024];
    snprintf(t, sizeof t, "%.*s", (int)(len < sizeof t ? len : sizeof t - 1), text);
    char *p = op_outbuf_reserve(&s->out, 2048);
    size_t n = op_milter_encode_replycode(p, 2048, code, status, t);
    if (n == 0) /* a status of the wrong class: fall back to a plain tempfail */
        n = op_milter_encode_simple(p, 2048, OP_MILTER_R_TEMPFAIL);
    op_outbuf_commit(&s->out, n);
}

static void add_pending_header(op_milter_session_t *s, const char *hdr, size_t len)
{
    const char *colon = memchr(hdr, ':', len);
    if (colon == NULL || colon == hdr)
        return;
    s->pending_headers = op_realloc(s->pending_headers,
                                    (s->npending_headers + 1) * sizeof *s->pending_headers);
    op_milter_pair_t *p = &s->pending_headers[s->npending_headers++];
    p->name = op_strndup(hdr, (size_t)(colon - hdr));
    const char *v = colon + 1;
    while (v < hdr + len && *v == ' ')
        v++;
    p->value = op_strndup(v, (size_t)(hdr + len - v));
}

/* End of message: modifications first, then the verdict. */
static void apply_modifications(op_milter_session_t *s, lua_State *L, int index)
{
    for (size_t i = 0; i < s->npending_headers; i++) {
        if (!(s->actions & OP_MILTER_F_ADDHDRS))
            break;
        char *p = op_outbuf_reserve(&s->out, 8192 + 512);
        op_outbuf_commit(&s->out, op_milter_encode_header(p, 8192 + 512, OP_MILTER_R_ADDHEADER, 0,
                                                          s->pending_headers[i].name,
                                                          s->pending_headers[i].value));
    }
    if (L != NULL && index > 0)
        op_milter_encode_mods(L, index, &s->out, s->actions);
    if (s->quarantine != NULL && (s->actions & OP_MILTER_F_QUARANTINE)) {
        char *p = op_outbuf_reserve(&s->out, 1100);
        op_outbuf_commit(&s->out, op_milter_encode_string(p, 1100, OP_MILTER_R_QUARANTINE,
                                                          *s->quarantine ? s->quarantine
                                                                         : "held by outpost"));
    }
}

static void reply_verdict(op_milter_session_t *s, const op_answer_t *a)
{
    op_milter_verdict_t v;
    if (op_milter_verdict(a->action, a->action_len, &v) != 0)
        op_error("milter %s: service %s answered '%.*s', which is no action; tempfail", s->peer,
                 s->svc->conf->name, (int)a->action_len, a->action);
    if (v.ignored != NULL)
        op_warn("milter %s: %s has no milter equivalent; continuing", s->peer, v.ignored);
    if (v.header != NULL)
        add_pending_header(s, v.header, v.header_len);
    if (v.quarantine != NULL) {
        free(s->quarantine);
        s->quarantine = op_strndup(v.quarantine, v.quarantine_len);
    }
    if (s->phase == OP_PHASE_EOM && v.reply != OP_MILTER_R_REPLYCODE)
        apply_modifications(s, a->L, a->index);
    if (v.reply == OP_MILTER_R_REPLYCODE)
        reply_code(s, v.code, v.status, v.text, v.text_len);
    else
        reply_simple(s, v.reply);
}

/* ---- phases ---- */

static void log_decision(op_milter_session_t *s, op_request_t *req, const op_answer_t *a)
{
    const char *user = "";
    for (size_t i = 0; i < s->nmacros; i++)
        if (strcmp(s->macros[i].name, "{auth_authen}") == 0)
            user = s->macros[i].value;
    op_info("decision req=%llu service=%s tenant=%s proto=milter phase=%s client=%s "
            "sasl_user=\"%s\" sender=\"%s\" rcpts=%zu action=\"%.*s\" check=%s reason=%s "
            "elapsed_us=%llu gen=%llu",
            (unsigned long long)req->serial, s->svc->conf->name, *s->tenant ? s->tenant : "-",
            op_phase_handler_name(s->phase) + 3, s->address ? s->address : "-", user,
            s->nmail_args ? s->mail_args[0] : "", s->nrcpts, (int)a->action_len, a->action,
            a->check, a->reason, (unsigned long long)(now_us() - s->req_start_us),
            (unsigned long long)req->gen->number);
}

static void on_phase_done(op_request_t *req, const op_answer_t *a, void *data)
{
    op_milter_session_t *s = data;
    s->req = NULL;
    if (uv_is_active((uv_handle_t *)&s->progress))
        uv_timer_stop(&s->progress);
    if (s->gen->cfg->log_decisions)
        log_decision(s, req, a);
    if (s->phase != OP_PHASE_ABORT)
        reply_verdict(s, a);
    if (!s->processing) {
        flush(s);
        process_input(s);
    }
}

static void on_progress(uv_timer_t *t)
{
    op_milter_session_t *s = t->data;
    reply_simple(s, OP_MILTER_R_PROGRESS);
    flush(s);
}

/* Runs the handler of phase if the policy has one; returns 0 when it did
 * (the reply comes from on_phase_done), -1 when there is none. */
static int run_phase(op_milter_session_t *s, op_phase_t phase, const op_milter_msg_t *m)
{
    if (s->svc->handler_ref[phase] == LUA_NOREF)
        return -1;
    s->phase = phase;
    s->msg = m;
    s->req_start_us = now_us();
    s->req = op_request_start_phase(s->d->loop, s->gen, s->svc, phase, op_milter_push_ctx, s,
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
        if (ph == OP_PHASE_EOM)
            apply_modifications(s, NULL, 0);
        reply_simple(s, OP_MILTER_R_CONTINUE);
    }
}

static void set_macros(op_milter_session_t *s, const op_milter_msg_t *m)
{
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
    char *p = op_outbuf_reserve(&s->out, cap);
    op_outbuf_commit(&s->out, op_milter_encode_optneg(p, cap, &o, lists));
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
        if (s->nheaders < OP_MILTER_MAX_HEADERS &&
            s->header_bytes + bytes <= OP_MILTER_MAX_HEADER_BYTES) {
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
            reply_simple(s, OP_MILTER_R_CONTINUE);
        break;
    case OP_MILTER_QUIT_NC:
        reset_connection(s);
        break;
    case OP_MILTER_QUIT:
        break;
    }
}

static void set_reading(op_milter_session_t *s);

static void process_input(op_milter_session_t *s)
{
    if (s->closing)
        return;
    s->processing = 1;
    size_t pos = 0;
    /* One packet at a time: while a handler runs, later packets wait, so
     * phases are answered in order and an abort finds nothing in flight. */
    while (!s->closing && s->req == NULL && pos < s->in_len) {
        op_milter_msg_t m;
        ssize_t r = op_milter_parse(&s->parser, s->in + pos, s->in_len - pos, &m);
        if (r == 0)
            break;
        if (r < 0) {
            op_warn("milter %s (listener %s): %s in state %s; closing the connection", s->peer,
                    s->l->name, op_milter_strerror(r), op_milter_state_name(s->parser.state));
            s->processing = 0;
            session_close(s);
            return;
        }
        handle(s, &m);
        pos += (size_t)r;
        if (m.cmd == OP_MILTER_QUIT) {
            s->processing = 0;
            flush(s);
            session_close(s);
            return;
        }
    }
    s->processing = 0;
    if (pos > 0) {
        memmove(s->in, s->in + pos, s->in_len - pos);
        s->in_len -= pos;
    }
    flush(s);
    set_reading(s);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    op_milter_session_t *s = h->data;
    size_t max = s->parser.limits.max_packet + 2 * READ_CHUNK;
    if (s->in_cap - s->in_len < READ_CHUNK && s->in_cap < max) {
        size_t cap = s->in_cap ? s->in_cap * 2 : READ_CHUNK * 2;
        s->in = op_realloc(s->in, cap > max ? max : cap);
        s->in_cap = cap > max ? max : cap;
    }
    *buf = uv_buf_init(s->in + s->in_len, (unsigned)(s->in_cap - s->in_len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    (void)buf;
    op_milter_session_t *s = st->data;
    if (nread > 0) {
        s->in_len += (size_t)nread;
        s->last_active = uv_now(s->d->loop);
        process_input(s);
        return;
    }
    if (nread == 0)
        return;
    if (nread != UV_EOF)
        op_info("milter %s: read failed: %s", s->peer, uv_strerror((int)nread));
    session_close(s);
}

static void set_reading(op_milter_session_t *s)
{
    /* Stop reading while a handler runs and the buffer holds a whole packet
     * more; the MTA does not send much ahead of an answer. */
    int want = !s->closing && !s->d->stopping && (s->req == NULL || s->in_len < READ_CHUNK);
    if (want == s->reading)
        return;
    s->reading = want;
    if (want)
        uv_read_start(&s->h.stream, on_alloc, on_read);
    else
        uv_read_stop(&s->h.stream);
}

static void close_rejected(uv_handle_t *h)
{
    op_milter_session_t *s = h->data;
    op_listener_unref(s->l);
    free(s);
}

void op_milter_accept(op_listener_t *l)
{
    op_daemon_t *d = l->daemon;
    op_milter_session_t *s = op_calloc(1, sizeof *s);
    s->d = d;
    s->l = l;
    op_listener_ref(l); /* it may close while the session drains */
    if (l->kind == OP_LISTEN_UNIX)
        uv_pipe_init(d->loop, &s->h.pipe, 0);
    else
        uv_tcp_init(d->loop, &s->h.tcp);
    s->h.handle.data = s;
    if (uv_accept(&l->h.stream, &s->h.stream) != 0) {
        uv_close(&s->h.handle, close_rejected);
        return;
    }
    op_gen_t *gen = d->current;
    const op_gen_service_t *svc = op_gen_service(gen, l->service);
    if (d->stopping || d->nconns >= gen->cfg->max_connections || svc == NULL) {
        op_warn("milter listener %s: %s; refusing the connection", l->name,
                d->stopping ? "shutting down"
                : svc == NULL ? "its service is not in the current configuration"
                              : "max_connections reached");
        uv_close(&s->h.handle, close_rejected);
        return;
    }
    s->gen = gen;
    op_gen_ref(gen);
    s->svc = svc;
    s->tenant = op_strdup(l->tenant);
    s->conn_ref = s->msg_ref = LUA_NOREF;
    reset_connection(s);
    snprintf(s->peer, sizeof s->peer, "%s:%s", l->kind == OP_LISTEN_UNIX ? "unix" : "tcp", l->name);
    if (l->kind == OP_LISTEN_TCP)
        uv_tcp_nodelay(&s->h.tcp, 1);
    op_milter_parser_init(&s->parser, NULL);
    op_outbuf_init(&s->out, &s->h.stream, on_written, s);
    uv_timer_init(d->loop, &s->progress);
    s->last_active = uv_now(d->loop);
    s->next = d->milters;
    if (d->milters)
        d->milters->prev = s;
    d->milters = s;
    d->nconns++;
    set_reading(s);
}

void op_milter_sweep(op_daemon_t *d, uint64_t idle_ms)
{
    uint64_t now = uv_now(d->loop);
    for (op_milter_session_t *s = d->milters; s != NULL; s = s->next) {
        if (s->closing || s->req != NULL || !op_outbuf_idle(&s->out))
            continue;
        if (d->stopping || (idle_ms > 0 && now - s->last_active > idle_ms))
            session_close(s);
    }
}

void op_milter_drain_all(op_daemon_t *d)
{
    op_milter_sweep(d, 0);
    for (op_milter_session_t *s = d->milters; s != NULL; s = s->next)
        if (!s->closing)
            set_reading(s);
}

void op_milter_abort_all(op_daemon_t *d)
{
    for (op_milter_session_t *s = d->milters; s != NULL; s = s->next) {
        if (s->closing)
            continue;
        if (s->req != NULL) {
            s->processing = 1;
            op_request_abort(s->req, "shutdown");
            s->processing = 0;
            flush(s);
        }
        session_close(s);
    }
}
