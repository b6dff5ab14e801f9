/* The replies of a milter session (milter_session.h): simple replies,
 * reply codes, the verdict of an answer, the modifications at end of
 * message, and the decision log. */
#include "core/log.h"
#include "core/mem.h"
#include "proto/milter_session.h"
#include "proto/milter_verdict.h"

#include <stdio.h>
#include <string.h>

void op__milter_reply_simple(op_milter_session_t *s, char r)
{
    op_outbuf_commit(&s->session.out, op_milter_encode_simple(op_outbuf_reserve(&s->session.out, 8), 8, r));
}

static void reply_code(op_milter_session_t *s, int code, const char *status, const char *text,
                       size_t len)
{
    char t[1024];
    snprintf(t, sizeof t, "%.*s", (int)(len < sizeof t ? len : sizeof t - 1), text);
    char *p = op_outbuf_reserve(&s->session.out, 2048);
    size_t n = op_milter_encode_replycode(p, 2048, code, status, t);
    if (n == 0) /* a status of the wrong class: fall back to a plain tempfail */
        n = op_milter_encode_simple(p, 2048, OP_MILTER_R_TEMPFAIL);
    op_outbuf_commit(&s->session.out, n);
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
void op__milter_apply_modifications(op_milter_session_t *s, lua_State *L, int index)
{
    for (size_t i = 0; i < s->npending_headers; i++) {
        if (!(s->actions & OP_MILTER_F_ADDHDRS))
            break;
        char *p = op_outbuf_reserve(&s->session.out, 8192 + 512);
        op_outbuf_commit(&s->session.out, op_milter_encode_header(p, 8192 + 512, OP_MILTER_R_ADDHEADER, 0,
                                                          s->pending_headers[i].name,
                                                          s->pending_headers[i].value));
    }
    if (L != NULL && index > 0)
        op_milter_encode_mods(L, index, &s->session.out, s->actions);
    if (s->quarantine != NULL && (s->actions & OP_MILTER_F_QUARANTINE)) {
        char *p = op_outbuf_reserve(&s->session.out, 1100);
        op_outbuf_commit(&s->session.out, op_milter_encode_string(p, 1100, OP_MILTER_R_QUARANTINE,
                                                          *s->quarantine ? s->quarantine
                                                                         : "held by outpost"));
    }
}

void op__milter_reply_overflow(op_milter_session_t *s, const char *policy_action, size_t len)
{
    const char *action = s->svc->conf->header_overflow_action;
    op_warn("milter %s: service %s: the message has %s, more than outpostd keeps; answering "
            "header_overflow_action '%s' (the policy answered '%.*s')", s->session.peer,
            s->svc->conf->name, s->overflow, action, policy_action ? (int)len : 1,
            policy_action ? policy_action : "-");
    op_milter_verdict_t v;
    /* the configuration checked that it refuses (service_config.c) */
    if (op_milter_verdict(action, strlen(action), &v) != 0 || v.reply != OP_MILTER_R_REPLYCODE) {
        op__milter_reply_simple(s, OP_MILTER_R_TEMPFAIL);
        return;
    }
    reply_code(s, v.code, v.status, v.text, v.text_len);
}

void op__milter_reply_verdict(op_milter_session_t *s, const op_answer_t *a)
{
    op_milter_verdict_t v;
    /* A header with fields left out is never judged: at end of message, and
     * whenever an answer would accept the message early, the service's
     * header_overflow_action answers instead. */
    if (s->overflow != NULL && op_milter_verdict(a->action, a->action_len, &v) == 0 &&
        (s->phase == OP_PHASE_EOM || v.reply == OP_MILTER_R_ACCEPT)) {
        op__milter_reply_overflow(s, a->action, a->action_len);
        return;
    }
    if (op_milter_verdict(a->action, a->action_len, &v) != 0)
        op_error("milter %s: service %s answered '%.*s', which is no action; tempfail", s->session.peer,
                 s->svc->conf->name, (int)a->action_len, a->action);
    if (v.ignored != NULL)
        op_warn("milter %s: %s has no milter equivalent; continuing", s->session.peer, v.ignored);
    if (v.header != NULL)
        add_pending_header(s, v.header, v.header_len);
    if (v.quarantine != NULL) {
        free(s->quarantine);
        s->quarantine = op_strndup(v.quarantine, v.quarantine_len);
    }
    if (s->phase == OP_PHASE_EOM && v.reply != OP_MILTER_R_REPLYCODE)
        op__milter_apply_modifications(s, a->L, a->index);
    if (v.reply == OP_MILTER_R_REPLYCODE)
        reply_code(s, v.code, v.status, v.text, v.text_len);
    else
        op__milter_reply_simple(s, v.reply);
}

/* The action's detail (outpost.action :detail), for the decision line:
 * quotes, backslashes and control bytes become spaces, at most 1000 bytes.
 * Returns its length, or -1 when the action has none. */
static int action_detail(const op_answer_t *a, char *out, size_t cap)
{
    if (a->L == NULL || a->index == 0)
        return -1;
    lua_getfield(a->L, a->index, "detail");
    size_t len = 0, n = 0;
    const char *d = lua_type(a->L, -1) == LUA_TSTRING ? lua_tolstring(a->L, -1, &len) : NULL;
    for (size_t i = 0; d != NULL && i < len && n + 1 < cap; i++) {
        unsigned char c = (unsigned char)d[i];
        out[n++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? ' ' : (char)c;
    }
    lua_pop(a->L, 1);
    return d != NULL ? (int)n : -1;
}

static const char *macro(const op_milter_session_t *s, const char *name)
{
    for (size_t i = 0; i < s->nmacros; i++)
        if (strcmp(s->macros[i].name, name) == 0)
            return s->macros[i].value;
    return "";
}

/* One decision line, structured (log.h renders it for the target), in the
 * order readers grep for; queue_id (Postfix's `i` macro: the queue id
 * once the queue file exists) was added at the end. */
void op__milter_log_decision(op_milter_session_t *s, op_request_t *req, const op_answer_t *a)
{
    char detail[1001], serial[24], nrcpts[24], elapsed[24], gen[24];
    int dlen = action_detail(a, detail, sizeof detail);
    const char *sender = s->nmail_args ? s->mail_args[0] : "";
    const char *user = macro(s, "{auth_authen}"), *qid = macro(s, "i");
    const char *phase = op_phase_handler_name(s->phase) + 3;
    op_log_field_t f[16];
    size_t n = 0;
#define NUM(k, buf, v)                                                                             \
    f[n++] = (op_log_field_t){k, buf, (size_t)snprintf(buf, sizeof buf, "%llu", (unsigned long long)(v)), \
                              OP_LF_NUM, 0}
#define STR(k, v, flags, max) f[n++] = (op_log_field_t){k, v, strlen(v), flags, max}
    NUM("req", serial, req->serial);
    STR("service", s->svc->conf->name, 0, 0);
    STR("tenant", *s->tenant ? s->tenant : "-", 0, 0);
    STR("proto", "milter", 0, 0);
    STR("phase", phase, 0, 0);
    STR("client", s->address ? s->address : "-", 0, 0);
    STR("sasl_user", user, OP_LF_QUOTE, 0);
    STR("sender", sender, OP_LF_QUOTE, 0);
    NUM("rcpts", nrcpts, s->nrcpts);
    f[n++] = (op_log_field_t){"action", a->action, a->action_len, OP_LF_QUOTE, 1000};
    STR("check", a->check, 0, 0);
    STR("reason", a->reason, 0, 0);
    if (dlen >= 0)
        f[n++] = (op_log_field_t){"detail", detail, (size_t)dlen, OP_LF_QUOTE, 1000};
    NUM("elapsed_us", elapsed, op_session_now_us() - s->req_start_us);
    NUM("gen", gen, req->gen->number);
    STR("queue_id", qid, 0, 40);
#undef NUM
#undef STR
    op_log_fields(OP_LOG_INFO, "decision", f, n);
}
