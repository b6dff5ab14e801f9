/* outpostctl explain: requests from the command line or from a file of
 * Postfix request dumps, each explained by the daemon in dry-run mode. */
#ifndef CTL_EXPLAIN_H
#define CTL_EXPLAIN_H

/* argv: what follows the word "explain".  Returns the exit status. */
int ctl_explain(const char *sock, int json, int argc, char **argv);

#endif
