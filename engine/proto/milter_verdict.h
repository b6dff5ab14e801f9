/* What a policy's answer means to the milter protocol: the Postfix
 * access(5) action text an outpost.action carries, turned into a milter
 * reply.  Pure; the session applies it. */
#ifndef OP_MILTER_VERDICT_H
#define OP_MILTER_VERDICT_H

#include <stddef.h>

typedef struct {
    char reply;         /* OP_MILTER_R_CONTINUE, _ACCEPT, _DISCARD or _REPLYCODE */
    int code;           /* _REPLYCODE: 4xx or 5xx */
    char status[16];    /* _REPLYCODE: enhanced status, e.g. "5.7.1" */
    const char *text;   /* _REPLYCODE: the text (points into the action) */
    size_t text_len;
    /* Modifications, applied at end of message. */
    const char *quarantine; /* HOLD: the reason (may be empty), or NULL */
    size_t quarantine_len;
    const char *header;     /* PREPEND: "Name: value", or NULL */
    size_t header_len;
    const char *ignored;    /* an action with no milter equivalent (REDIRECT, BCC,
                               FILTER): the word, to log; the reply is continue */
} op_milter_verdict_t;

/* Returns 0, or -1 for text that is no Postfix action (v then says
 * tempfail: reply _REPLYCODE 451 4.3.5). */
int op_milter_verdict(const char *action, size_t len, op_milter_verdict_t *v);

#endif
