/* Which service and tenant answer a policy request on a listener: Postfix's
 * policy_context (check_policy_service { ADDRESS, policy_context=VALUE })
 * selects one of the listener's allow_context entries, so one endpoint
 * can serve every service and tenant.  A value the listener does not list
 * is answered with its unknown_context_action, never by another policy:
 * a wrong context in main.cf must show, not be decided by the wrong
 * checks. */
#include "core/listener.h"

#include "lib/siphash.h"

#include <string.h>

#define SEEN_WINDOW_MS 60000
#define SHOWN_MAX 128 /* bytes of a value a log line shows */

static int equals(const char *s, const char *v, size_t len)
{
    return strlen(s) == len && memcmp(s, v, len) == 0;
}

int op_listener_route(const op_listener_t *l, const char *context, size_t context_len,
                      const char **service, const char **tenant)
{
    *service = l->service;
    *tenant = l->tenant;
    if (context_len == 0 || equals(l->service, context, context_len))
        return 0;
    for (size_t i = 0; i < l->ncontexts; i++) {
        const op_listener_context_t *x = &l->contexts[i];
        if (equals(x->text, context, context_len)) {
            *service = x->service;
            *tenant = x->tenant ? x->tenant : l->tenant;
            return 0;
        }
    }
    return -1;
}

/* One line per distinct value per minute: the values seen in the last
 * minute are kept by their keyed hash in a fixed table, so a client that
 * sends a new value each time cannot grow it; past the table, lines are
 * rate-limited as a whole. */
void op_listener_unknown_context(op_listener_t *l, const char *peer, const char *context,
                                 size_t context_len, uint64_t now_ms)
{
    uint64_t h = op_siphash(context, context_len);
    struct op__seen_context *slot = NULL;
    size_t n = sizeof l->seen / sizeof l->seen[0];
    for (size_t i = 0; i < n && slot == NULL; i++)
        if (l->seen[i].at_ms != 0 && l->seen[i].hash == h)
            slot = &l->seen[i];
    if (slot != NULL && now_ms - slot->at_ms < SEEN_WINDOW_MS) {
        slot->repeats++;
        return;
    }
    for (size_t i = 0; i < n && slot == NULL; i++)
        if (l->seen[i].at_ms == 0 || now_ms - l->seen[i].at_ms >= SEEN_WINDOW_MS)
            slot = &l->seen[i];
    int shown = context_len > SHOWN_MAX ? SHOWN_MAX : (int)context_len;
    if (slot == NULL) {
        op_log_limited(&l->seen_overflow, now_ms, OP_LOG_WARNING,
                       "listener %s: connection %s: policy_context \"%.*s%s\" is not in allow_context; "
                       "answering \"%s\" (many distinct values this minute)",
                       l->name, peer, shown, context, (size_t)shown < context_len ? "..." : "",
                       l->unknown_action);
        return;
    }
    unsigned long repeats = slot->hash == h ? slot->repeats : 0;
    *slot = (struct op__seen_context){.hash = h, .at_ms = now_ms ? now_ms : 1};
    char again[64] = "";
    if (repeats > 0)
        snprintf(again, sizeof again, "; %lu more since the last line", repeats);
    op_warn("listener %s: connection %s: policy_context \"%.*s%s\" is not in allow_context; "
            "answering \"%s\" (logged once a minute per value%s)",
            l->name, peer, shown, context, (size_t)shown < context_len ? "..." : "",
            l->unknown_action, again);
}
