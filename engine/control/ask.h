/* `outpostd ask`: sends one policy request to a running daemon and prints
 * the answer, so an admin can try a policy without an MTA. */
#ifndef OP_ASK_H
#define OP_ASK_H

/* address: "unix:PATH", "tcp:HOST:PORT" or a bare socket path.  args are
 * name=value attributes added to (or replacing) a default RCPT request.
 * Returns the exit status. */
int op_ask(const char *address, int argc, char **argv);

/* `outpostd ask --dry-run [-c FILE] [--json] [--service S] [--tenant T]
 * {NAME=VALUE... | -f FILE | -f -}` (ask_dry.c): the explanation of
 * outpostctl explain without a running daemon.  It loads the configuration
 * and policies itself and opens the counters store read-only (beside a
 * daemon that holds it); when it cannot, it says so and the limit checks
 * are "not evaluated".  argv: what follows --dry-run.  Returns the exit
 * status. */
int op_ask_dry_run(const char *default_config, int argc, char **argv);

#endif
