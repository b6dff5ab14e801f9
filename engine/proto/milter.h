/* A milter session: one MTA connection speaking the milter protocol (one
 * per SMTP connection, in Postfix), bound to a service like a policy
 * listener.  Each phase the service's policy has a handler for (on_connect
 * ... on_eom) runs as a request in a coroutine, with the same deadline,
 * default action and sandbox as policy requests; phases without a handler
 * are negotiated away (SMFIP_NO*) or answered without Lua (SMFIP_NR_*).
 *
 * A session keeps the generation that was current when it was accepted
 * for its whole life: the Lua tables of the connection and the message
 * live in that generation's state, so a reload applies to new SMTP
 * connections. */
#ifndef OP_MILTER_H
#define OP_MILTER_H

#include "core/session.h"

typedef struct op_milter_session op_milter_session_t;

/* The milter protocol on a session (core/session.h). */
extern const op_session_ops_t op_milter_session_ops;

#endif
