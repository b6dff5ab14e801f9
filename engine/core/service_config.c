/* service NAME { }: its schema rows, the checks of its values (the default
 * action, check modes) and the resolution of policy names into files.  The
 * settings are op_service_conf_t (service_config.h). */
#include "core/service_config.h"

#include "config/config_schema.h"
#include "core/mem.h"
#include "proto/milter_verdict.h"
#include "proto/proto_milter.h"
#include "proto/proto_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define fail op__config_fail
#define find_child op__config_find_child
#define SVC(f) offsetof(op_service_conf_t, f)

/* access(5) actions; a lowercase word is also accepted, as Postfix treats it
 * as the name of a restriction (reject_unverified_sender, ...). */
static int is_access_action(const char *word, size_t n, int whole)
{
    static const char *const actions[] = {
        "OK", "REJECT", "DEFER", "DEFER_IF_REJECT", "DEFER_IF_PERMIT", "BCC", "DISCARD",
        "DUNNO", "FILTER", "HOLD", "PREPEND", "REDIRECT", "INFO", "WARN",
    };
    if (strspn(word, "0123456789") >= n) /* "4NN text", "5NN text", or all digits (= OK) */
        return whole || (n == 3 && (word[0] == '4' || word[0] == '5'));
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++)
        if (strlen(actions[i]) == n && strncasecmp(actions[i], word, n) == 0)
            return 1;
    return strspn(word, "abcdefghijklmnopqrstuvwxyz0123456789_") >= n;
}

int op__config_check_action(ctx_t *c, const op_conf_node_t *at, const char *where, const char *key,
                            const char *v)
{
    size_t len = strlen(v);
    if (len > OP_POLICY_MAX_ACTION)
        return fail(c, at, where, "%s is %zu bytes long; Postfix accepts at most %d", key, len,
                    OP_POLICY_MAX_ACTION);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return fail(c, at, where, "%s must be one line: no CR, LF or other control characters", key);
    if (v[0] == ' ')
        return fail(c, at, where, "%s must not start with a space", key);
    size_t n = strcspn(v, " ");
    if (!is_access_action(v, n, n == len))
        return fail(c, at, where,
                    "%s: '%.*s' is not a Postfix access(5) action "
                    "(e.g. DEFER_IF_PERMIT text, 451 4.3.5 text, DUNNO)",
                    key, (int)n, v);
    return 0;
}

static int check_action(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    return op__config_check_action(c, at, where, "default_action",
                                   ((op_service_conf_t *)obj)->default_action);
}

/* A message whose header outpostd could not keep whole is never judged on
 * the part it kept, so the answer must refuse it: a reject or a tempfail,
 * never an action that lets the message through. */
static int check_overflow_action(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const char *v = ((op_service_conf_t *)obj)->header_overflow_action;
    op_milter_verdict_t verdict;
    if (op_milter_verdict(v, strlen(v), &verdict) != 0 || verdict.reply != OP_MILTER_R_REPLYCODE)
        return fail(c, at, where,
                    "header_overflow_action: '%s' must refuse the message: REJECT, DEFER, "
                    "or a 4NN/5NN reply (e.g. 552 5.3.4 text)", v);
    if (strlen(v) > 1000 || strpbrk(v, "\r\n") != NULL)
        return fail(c, at, where, "header_overflow_action must be one line of at most 1000 bytes");
    return 0;
}

/* "ID=MODE" (or "TENANT:ID=MODE" when with_tenant): a requirement id such
 * as PO1 or G3, and enforce, log-only, off or tag. */
static int check_mode_list(ctx_t *c, const op_conf_node_t *list, const char *where,
                           const char *key, int with_tenant)
{
    for (size_t i = 0; i < list->nchildren; i++) {
        const op_conf_node_t *el = &list->children[i];
        const char *v = el->value, *id = v;
        if (with_tenant) {
            const char *colon = strchr(v, ':');
            if (colon == NULL || colon == v)
                return fail(c, el, where, "%s: '%s' is not TENANT:ID=MODE", key, v);
            id = colon + 1;
        }
        const char *eq = strchr(id, '=');
        size_t n = 0;
        while (id + n < eq && id[n] >= 'A' && id[n] <= 'Z')
            n++;
        size_t d = 0;
        while (id + n + d < eq && id[n + d] >= '0' && id[n + d] <= '9')
            d++;
        if (eq == NULL || n == 0 || d == 0 || id + n + d != eq)
            return fail(c, el, where, "%s: '%s' is not %sID=MODE with an id like PO1 or G3", key,
                        v, with_tenant ? "TENANT:" : "");
        const char *mode = eq + 1;
        if (strcmp(mode, "enforce") != 0 && strcmp(mode, "log-only") != 0 &&
            strcmp(mode, "off") != 0 && strcmp(mode, "tag") != 0)
            return fail(c, el, where, "%s: '%s': the mode must be enforce, log-only, off or tag",
                        key, v);
    }
    return 0;
}

static int check_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    (void)obj;
    return check_mode_list(c, at, where, "checks", 0);
}

static int check_tenant_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    (void)obj;
    return check_mode_list(c, at, where, "tenant_checks", 1);
}

static const key_def_t rows[] = {
    {.key = "policy", .type = T_STRING, .flags = F_NONEMPTY,
     .doc_def = "the service NAME", .doc_type = "name or path", .off = SVC(policy),
     .descr = "Policy file. A name (no `/`) means `<lua_dir>/policies/NAME.lua`; a value with "
              "`/` is a path relative to this file's directory."},
    {.key = "deadline", .type = T_DURATION, .def = "10s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 90, .off = SVC(deadline),
     .descr = "Time the policy has to answer one request before `default_action` is sent. "
              "At most 90s: Postfix's policy client gives up after 100s."},
    {.key = "cpu_budget", .type = T_DURATION, .def = "1s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 60, .off = SVC(cpu_budget),
     .descr = "Most time the policy's Lua may run without waiting. Past it the request is "
              "stopped with `default_action` and the log names the check and file:line; code "
              "that cannot be stopped (a loop compiled by the JIT, one long C call) makes "
              "outpostd exit at twice the budget (at least 1s more) for its supervisor to "
              "restart it. See docs/reliability.md."},
    {.key = "default_action", .type = T_STRING,
     .def = "451 4.3.5 policy service unavailable, try again later", .flags = F_NONEMPTY,
     .off = SVC(default_action), .check = check_action,
     .descr = "Answer when the policy fails or misses its deadline: a Postfix access(5) action "
              "on one line, at most 1000 bytes."},
    {.key = "header_overflow_action", .type = T_STRING,
     .def = "552 5.3.4 message header too large to check", .flags = F_NONEMPTY,
     .off = SVC(header_overflow_action), .check = check_overflow_action,
     .descr = "Milter: the answer at end of message when its header exceeded what outpostd "
              "keeps (1,000 fields or 256 KiB), whatever the policy answered: the "
              "policy sees `ctx.truncated` and no check judges a part of the header. Must "
              "refuse (REJECT, DEFER, 4NN or 5NN text); a 5NN because the same message "
              "exceeds the bound on every retry."},
    {.key = "checks", .type = T_LIST, .doc_def = "every check enforced",
     .doc_type = "list of ID=MODE", .off = SVC(checks), .count_off = SVC(nchecks),
     .check = check_modes,
     .descr = "Mode of each check of the policy by requirement id: `enforce` (answer), "
              "`log-only` (log what it would answer, go on), `off`, and for end-of-message checks "
              "`tag` (add a header `X-Outpost-ID:` saying what it found, go on); "
              "e.g. `[MO3=log-only, PO8=log-only, G4=tag]`."},
    {.key = "tenant_checks", .type = T_LIST, .doc_def = "empty",
     .doc_type = "list of TENANT:ID=MODE", .off = SVC(tenant_checks),
     .count_off = SVC(ntenant_checks), .check = check_tenant_modes,
     .descr = "Modes for requests of one tenant, over `checks`; e.g. `[lm:AO5=log-only]`."},
};

const op_conf_section_t op_service_section = {
    .name = "service", .named = 1, .repeatable = 1,
    .descr = "`service NAME { }`: a policy and how it runs. Repeatable, at least one; "
             "names must be unique.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_service_conf_t),
};

_Static_assert(offsetof(op_service_conf_t, line) == offsetof(op_conf_item_t, line),
               "a named section's struct begins with op_conf_item_t's fields");

static char *policy_in(const char *dir, const char *name)
{
    size_t len = strlen(dir) + strlen(name) + sizeof "/policies/.lua";
    char *p = op_malloc(len);
    snprintf(p, len, "%s/policies/%s.lua", dir, name);
    return p;
}

/* The site's copy (daemon { site_lua_dir }) when there is one, else the
 * shipped policy under lua_dir. */
static char *policy_path(const op_config_t *cfg, const char *name)
{
    if (cfg->site_lua_dir != NULL) {
        char *p = policy_in(cfg->site_lua_dir, name);
        if (access(p, F_OK) == 0)
            return p;
        free(p);
    }
    return policy_in(cfg->lua_dir, name);
}

int op__service_config_resolve(ctx_t *c)
{
    op_config_t *cfg = c->cfg;
    const op_conf_node_t *const *nodes = op__config_nodes(c, &op_service_section);
    for (size_t i = 0; i < cfg->nservices; i++) {
        op_service_conf_t *s = &cfg->services[i];
        const op_conf_node_t *at = find_child(nodes[i], "policy");
        char where[96], *p;
        snprintf(where, sizeof where, "service '%s'", s->name);
        if (s->policy == NULL) {
            p = policy_path(cfg, s->name);
        } else if (strchr(s->policy, '/') == NULL) {
            size_t n = strlen(s->policy);
            if (n > 4 && strcmp(s->policy + n - 4, ".lua") == 0)
                return fail(c, at, where,
                            "policy '%s': a value without '/' is a policy name: write '%.*s' for "
                            "<lua_dir>/policies/%s, or './%s' for a file next to this config",
                            s->policy, (int)(n - 4), s->policy, s->policy, s->policy);
            if (!op__config_valid_name(s->policy))
                return fail(c, at, where, "policy: bad name '%s' (letters, digits, '.', '_', '-')", s->policy);
            p = policy_path(cfg, s->policy);
        } else {
            p = op__config_abs_path(cfg->dir, s->policy);
        }
        free(s->policy);
        s->policy = p;
    }
    return 0;
}
