/* A session: one accepted MTA connection, whatever protocol it speaks.
 * Here lives what every protocol does the same way: accepting from a
 * listener (refusing, while draining or past a cap, or a peer outside
 * the listener's allow_from), reading
 * into a growing buffer with back-pressure, writing through an output
 * buffer (outbuf.h), the idle sweep, the drain and the abort, and closing.
 * The daemon keeps one list of sessions.
 *
 * A protocol (proto/policy_session.c, proto/milter_session.c) plugs in
 * with an op_session_ops_t: its session struct begins with an op_session_t,
 * and it parses, dispatches and encodes; it never reads or writes the
 * stream itself. */
#ifndef OP_SESSION_H
#define OP_SESSION_H

#include "core/daemon.h"
#include "core/listener.h"
#include "core/outbuf.h"

#include <stdint.h>
#include <sys/types.h>

typedef struct op_session op_session_t;

typedef struct op_session_ops {
    const char *name;  /* how log lines name a session: "connection", "milter" */
    size_t size;       /* of the protocol's session, which begins with an op_session_t */
    size_t read_chunk; /* the room a read gets at the least */
    /* Accepted: sets up the protocol's state and s->in_max (the most input
     * held).  0, or -1 (logged) to refuse the connection. */
    int (*open)(op_session_t *s);
    /* May another message be taken from the input now (not too many in
     * flight)? */
    int (*can_take)(const op_session_t *s);
    /* Parses and dispatches one message at the start of in: the bytes it
     * took, 0 when it needs more input, -1 to close without a reply (the
     * protocol logged why).  Answers go to s->out; the session flushes. */
    ssize_t (*feed)(op_session_t *s, const char *in, size_t len);
    /* Should the session read more (back-pressure beyond can_take)? */
    int (*may_read)(const op_session_t *s);
    /* Requests in flight: the session is neither idle nor drained. */
    int (*busy)(const op_session_t *s);
    /* The drain deadline passed: answer what is in flight now (the
     * default action) into s->out. */
    void (*abort)(op_session_t *s);
    /* The session closes: cancel what is in flight; close the protocol's
     * own handles with op_session_close_handle. */
    void (*cancel)(op_session_t *s);
    /* Closed: free the protocol's state (not the session itself). */
    void (*free)(op_session_t *s);
} op_session_ops_t;

struct op_session {
    op_session_t *prev, *next; /* the daemon's list */
    const op_session_ops_t *ops;
    op_daemon_t *d;
    op_listener_t *l;     /* referenced: it may close while the session drains */
    op_stream_t h;
    char peer[80];        /* for log lines; the protocol's open may rewrite it */
    char *in;
    size_t in_len, in_cap, in_max;
    op_outbuf_t out;
    int reading, closing, processing;
    int finish;           /* set by feed: the protocol is done; flush and close */
    int handles;          /* open libuv handles: freed when the last closes */
    uint64_t last_active; /* uv_now() of the last read */
    uint64_t started;     /* uv_now() when the request in the input began to arrive */
    op__peer_t *peer_count; /* tcp: this address's connections on l */
};

/* Accepts a pending connection on l, speaking ops. */
void op_session_accept(op_listener_t *l, const op_session_ops_t *ops);

/* An answer came while no input was being processed (a request ended on
 * its own): sends it and reads on. */
void op_session_answered(op_session_t *s);

/* Sends what s->out collected; closes the session if the write fails. */
void op_session_flush(op_session_t *s);

/* Closes a protocol's own handle (h->data becomes s); the session is freed
 * once its stream and these handles are closed. */
void op_session_close_handle(op_session_t *s, uv_handle_t *h);

/* A monotonic clock in microseconds: when a message came, for the
 * decision logs' elapsed times. */
uint64_t op_session_now_us(void);

/* Closes sessions silent for longer than idle_ms (0: none), those whose
 * request began to arrive more than request_ms ago and is still not
 * complete (0: none) and, while the daemon drains, those with nothing in
 * flight. */
void op_session_sweep(op_daemon_t *d, uint64_t idle_ms, uint64_t request_ms);

/* Drain: stop reading new messages on every session; close those idle. */
void op_session_drain_all(op_daemon_t *d);

/* Drain deadline passed: answer what is in flight with the default action
 * and close. */
void op_session_abort_all(op_daemon_t *d);

#endif
