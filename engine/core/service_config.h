/* service NAME { }: a policy and how it runs (request.c, vm.c).  Included
 * by config/config.h, which keeps the services of a configuration in
 * op_config_t. */
#ifndef OP_SERVICE_CONFIG_H
#define OP_SERVICE_CONFIG_H

#include <stddef.h>

typedef struct {
    char *name;           /* service NAME { } */
    const char *file;
    int line;
    char *policy;         /* absolute path of the policy file */
    double deadline;      /* seconds; default 10 */
    double cpu_budget;    /* seconds of Lua between two waits (core/watchdog.h) */
    char *default_action; /* Postfix action text; default "451 4.3.5 ..." */
    /* milter: the answer at end of message when the header exceeded what
     * the session keeps (proto/milter_session.h); a refusal */
    char *header_overflow_action;
    char **checks;        /* "ID=MODE" */
    size_t nchecks;
    char **tenant_checks; /* "TENANT:ID=MODE" */
    size_t ntenant_checks;
} op_service_conf_t;

struct op__config_ctx;
/* After every section is read (the policy names depend on daemon { lua_dir }):
 * makes each service's policy an absolute path.  Returns 0 or -1 with the
 * load's error set. */
int op__service_config_resolve(struct op__config_ctx *c);

/* key's value v is a Postfix access(5) action on one line that Postfix
 * accepts (default_action, a listener's unknown_context_action): 0, or
 * -1 with the load's error set at at. */
struct op_conf_node;
int op__config_check_action(struct op__config_ctx *c, const struct op_conf_node *at, const char *where,
                            const char *key, const char *v);

#endif
