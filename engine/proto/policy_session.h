/* The policy delegation protocol as a session (core/session.h): a
 * connection from the MTA reads, parses, starts one request per query, and
 * writes the answers back in the order the queries came, however the
 * requests finish. */
#ifndef OP_POLICY_SESSION_H
#define OP_POLICY_SESSION_H

#include "core/session.h"

extern const op_session_ops_t op_policy_session_ops;

#endif
