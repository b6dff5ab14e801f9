/* `outpostd ask`: sends one policy request to a running daemon and prints
 * the answer, so an admin can try a policy without an MTA. */
#ifndef OP_ASK_H
#define OP_ASK_H

/* address: "unix:PATH", "tcp:HOST:PORT" or a bare socket path.  args are
 * name=value attributes added to (or replacing) a default RCPT request.
 * Returns the exit status. */
int op_ask(const char *address, int argc, char **argv);

#endif
