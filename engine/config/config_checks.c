/* The checks of single values the service { } rows point to (actions,
 * check modes): what a value must look like beyond its type, with a
 * message that says what would be right. */
#include "config/config_schema.h"

#include "proto/proto_policy.h"

#include <string.h>
#include <strings.h>

#define fail op__config_fail

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

int op__config_check_action(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const char *v = ((op_service_conf_t *)obj)->default_action;
    size_t len = strlen(v);
    if (len > OP_POLICY_MAX_ACTION)
        return fail(c, at, where, "default_action is %zu bytes long; Postfix accepts at most %d",
                    len, OP_POLICY_MAX_ACTION);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return fail(c, at, where, "default_action must be one line: no CR, LF or other control characters");
    if (v[0] == ' ')
        return fail(c, at, where, "default_action must not start with a space");
    size_t n = strcspn(v, " ");
    if (!is_access_action(v, n, n == len))
        return fail(c, at, where,
                    "default_action: '%.*s' is not a Postfix access(5) action "
                    "(e.g. DEFER_IF_PERMIT text, 451 4.3.5 text, DUNNO)",
                    (int)n, v);
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

int op__config_check_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    (void)obj;
    return check_mode_list(c, at, where, "checks", 0);
}

int op__config_check_tenant_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    (void)obj;
    return check_mode_list(c, at, where, "tenant_checks", 1);
}
