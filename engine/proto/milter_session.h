/* The milter session's data: milter_session.c and milter_reply.c own it;
 * lua_api_milter.c reads it to build a handler's argument. */
#ifndef OP_MILTER_SESSION_H
#define OP_MILTER_SESSION_H

#include "proto/milter.h"
#include "core/outbuf.h"
#include "core/request.h"
#include "core/metrics.h"
#include "core/session.h"
#include "proto/proto_milter.h"

#include <lua.h>

#define OP_MILTER_MAX_MACROS 128
#define OP_MILTER_MAX_HEADERS 1000
#define OP_MILTER_MAX_HEADER_BYTES (256 * 1024)
#define OP_MILTER_MAX_RCPTS 1000

typedef struct {
    char *name, *value;
} op_milter_pair_t;

struct op_milter_session {
    op_session_t session; /* first: the session layer allocates and frees the whole */
    op_milter_parser_t parser;
    op_gen_t *gen; /* pinned for the session */
    const op_gen_service_t *svc;
    char *tenant;
    uint32_t protocol, actions; /* negotiated */
    int conn_ref, msg_ref;      /* Lua tables in gen->L: the connection's and the message's state */

    /* what the MTA told so far */
    op_milter_pair_t macros[OP_MILTER_MAX_MACROS];
    size_t nmacros;
    char *hostname, *address, *helo;
    char family;
    unsigned port;
    char **mail_args; /* [0] is the sender */
    size_t nmail_args;
    char **rcpts;
    size_t nrcpts;
    op_milter_pair_t *headers;
    size_t nheaders, header_bytes;
    /* Why the header kept is not the whole header (a static string), or
     * NULL: past the bounds above no later field is kept, handlers see
     * ctx.truncated, and the message gets the service's
     * header_overflow_action at end of message (milter_reply.c). */
    const char *overflow;
    char *body;
    size_t body_len;

    /* the phase being answered */
    const op_milter_msg_t *msg;  /* the packet, while a handler's argument is built */
    op_phase_t phase;
    op_request_t *req;
    uint64_t req_start_us;
    op_metrics_req_t metrics; /* the phase request in flight (core/metrics.h) */
    op_metrics_route_t *metrics_route; /* the listener's at open: svc's and tenant's labels */
    /* modifications asked for before end of message, applied there */
    op_milter_pair_t *pending_headers;
    size_t npending_headers;
    char *quarantine;

    uv_timer_t progress;
};

/* lua_api_milter.c: pushes the argument of the handler for s->phase. */
void op_milter_push_ctx(lua_State *co, op_request_t *req, void *session);

/* lua_api_milter.c: the header modifications an action asks for
 * (action:add_header(...), ...), each encoded as a milter reply packet
 * appended to ob.  Returns how many. */
size_t op_milter_encode_mods(lua_State *L, int index, op_outbuf_t *ob, uint32_t actions);

/* milter_reply.c: the replies of a phase, in s->session.out. */
void op__milter_reply_simple(op_milter_session_t *s, char r);
/* The verdict of a phase's answer; at end of message the modifications
 * first. */
void op__milter_reply_verdict(op_milter_session_t *s, const op_answer_t *a);
/* The answer to a message whose header overflowed: the service's
 * header_overflow_action, without modifications; policy_action is what the
 * policy answered (logged), or NULL when no handler ran. */
void op__milter_reply_overflow(op_milter_session_t *s, const char *policy_action, size_t len);
/* End of message without a handler: the modifications asked for before. */
void op__milter_apply_modifications(op_milter_session_t *s, lua_State *L, int index);
void op__milter_log_decision(op_milter_session_t *s, op_request_t *req, const op_answer_t *a);

#endif
