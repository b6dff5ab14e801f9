/* The session's data the Lua binding reads to build a handler's argument
 * (milter.c owns it; lua_api_milter.c reads it). */
#ifndef OP_MILTER_SESSION_H
#define OP_MILTER_SESSION_H

#include "proto/milter.h"
#include "core/outbuf.h"
#include "proto/proto_milter.h"
#include "core/request.h"

#include <lua.h>

#define OP_MILTER_MAX_MACROS 128
#define OP_MILTER_MAX_HEADERS 1000
#define OP_MILTER_MAX_HEADER_BYTES (256 * 1024)
#define OP_MILTER_MAX_RCPTS 1000

typedef struct {
    char *name, *value;
} op_milter_pair_t;

struct op_milter_session {
    op_milter_session_t *prev, *next;
    op_daemon_t *d;
    op_listener_t *l;
    op_stream_t h;
    char peer[80];
    char *in;
    size_t in_len, in_cap;
    op_milter_parser_t parser;
    op_outbuf_t out;
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
    char *body;
    size_t body_len;

    /* the phase being answered */
    const op_milter_msg_t *msg;  /* the packet, while a handler's argument is built */
    op_phase_t phase;
    op_request_t *req;
    uint64_t req_start_us;
    /* modifications asked for before end of message, applied there */
    op_milter_pair_t *pending_headers;
    size_t npending_headers;
    char *quarantine;

    uv_timer_t progress;
    int closing, reading, processing;
    uint64_t last_active;
};

/* lua_api_milter.c: pushes the argument of the handler for s->phase. */
void op_milter_push_ctx(lua_State *co, op_request_t *req, void *session);

/* lua_api_milter.c: the header modifications an action asks for
 * (action:add_header(...), ...), each encoded as a milter reply packet
 * appended to ob.  Returns how many. */
size_t op_milter_encode_mods(lua_State *L, int index, op_outbuf_t *ob, uint32_t actions);

#endif
