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
 * quotes, backslashes and control bytes become spaces, at most 1000 bytes. */
static void action_detail(const op_answer_t *a, char *out, size_t cap)
{
    out[0] = '\0';
    if (a->L == NULL || a->index == 0)
        return;
    lua_getfield(a->L, a->index, "detail");
    size_t len = 0;
    const char *d = lua_type(a->L, -1) == LUA_TSTRING ? lua_tolstring(a->L, -1, &len) : NULL;
    if (d != NULL) {
        size_t n = 0;
        memcpy(out, " detail=\"", 9);
        n = 9;
        for (size_t i = 0; i < len && n + 2 < cap; i++) {
            unsigned char c = (unsigned char)d[i];
            out[n++] = (c < 0x20 || c == 0x7f || c == '"' || c == '\\') ? ' ' : (char)c;
        }
        out[n++] = '"';
        out[n] = '\0';
    }
    lua_pop(a->L, 1);
}

void op__milter_log_decision(op_milter_session_t *s, op_request_t *req, const op_answer_t *a)
{
    const char *user = "";
    for (size_t i = 0; i < s->nmacros; i++)
        if (strcmp(s->macros[i].name, "{auth_authen}") == 0)
            user = s->macros[i].value;
    char detail[1024];
    action_detail(a, detail, sizeof detail);
    op_info("decision req=%llu service=%s tenant=%s proto=milter phase=%s client=%s "
            "sasl_user=\"%s\" sender=\"%s\" rcpts=%zu action=\"%.*s\" check=%s reason=%s%s "
            "elapsed_us=%llu gen=%llu",
            (unsigned long long)req->serial, s->svc->conf->name, *s->tenant ? s->tenant : "-",
            op_phase_handler_name(s->phase) + 3, s->address ? s->address : "-", user,
            s->nmail_args ? s->mail_args[0] : "", s->nrcpts, (int)a->action_len, a->action,
            a->check, a->reason, detail, (unsigned long long)(op_session_now_us() - s->req_start_us),
            (unsigned long long)req->gen->number);
}
