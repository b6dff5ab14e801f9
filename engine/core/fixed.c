/* What only a restart changes (fixed.h). */
#include "core/fixed.h"

#include "core/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name, *listen, *owner, *group;
    op_proto_t protocol;
    int mode;
} fixed_listener_t;

struct op_fixed {
    char *user, *group, *state_dir;
    fixed_listener_t *listeners;
    size_t nlisteners;
};

static char *dup_or_null(const char *s)
{
    return s != NULL ? op_strdup(s) : NULL;
}

static int same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

op_fixed_t *op_fixed_save(const op_config_t *cfg)
{
    op_fixed_t *f = op_calloc(1, sizeof *f);
    f->user = dup_or_null(cfg->user);
    f->group = dup_or_null(cfg->group);
    f->state_dir = dup_or_null(cfg->state_dir);
    f->listeners = op_calloc(cfg->nlisteners ? cfg->nlisteners : 1, sizeof *f->listeners);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const op_listener_conf_t *lc = &cfg->listeners[i];
        fixed_listener_t *l = &f->listeners[f->nlisteners++];
        l->name = op_strdup(lc->name);
        l->listen = op_strdup(lc->listen);
        l->owner = dup_or_null(lc->socket_owner);
        l->group = dup_or_null(lc->socket_group);
        l->protocol = lc->protocol;
        l->mode = lc->socket_mode;
    }
    return f;
}

void op_fixed_free(op_fixed_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nlisteners; i++) {
        fixed_listener_t *l = &f->listeners[i];
        free(l->name), free(l->listen), free(l->owner), free(l->group);
    }
    free(f->listeners);
    free(f->user), free(f->group), free(f->state_dir);
    free(f);
}

typedef struct {
    char *p;
    size_t len, used;
    size_t count;
} diff_t;

static void note(diff_t *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(diff_t *d, const char *fmt, ...)
{
    if (d->count++ > 0 && d->used < d->len)
        d->used += (size_t)snprintf(d->p + d->used, d->len - d->used, "; ");
    if (d->used >= d->len)
        return;
    va_list ap;
    va_start(ap, fmt);
    d->used += (size_t)vsnprintf(d->p + d->used, d->len - d->used, fmt, ap);
    va_end(ap);
}

static const char *or_default(const char *s)
{
    return s != NULL ? s : "(default)";
}

size_t op_fixed_diff(const op_fixed_t *f, const op_config_t *cfg, char *out, size_t outlen)
{
    diff_t d = {out, outlen, 0, 0};
    if (outlen > 0)
        out[0] = '\0';
    if (!same(f->user, cfg->user))
        note(&d, "daemon user %s -> %s", or_default(f->user), or_default(cfg->user));
    if (!same(f->group, cfg->group))
        note(&d, "daemon group %s -> %s", or_default(f->group), or_default(cfg->group));
    if (!same(f->state_dir, cfg->state_dir))
        note(&d, "state_dir %s -> %s", f->state_dir, cfg->state_dir);
    for (size_t i = 0; i < f->nlisteners; i++) {
        const fixed_listener_t *l = &f->listeners[i];
        const op_listener_conf_t *lc = NULL;
        for (size_t j = 0; j < cfg->nlisteners && lc == NULL; j++)
            if (strcmp(cfg->listeners[j].listen, l->listen) == 0)
                lc = &cfg->listeners[j];
        if (lc == NULL) {
            note(&d, "listener %s (%s) removed", l->name, l->listen);
            continue;
        }
        if (lc->protocol != l->protocol)
            note(&d, "listener %s (%s): protocol changed", lc->name, l->listen);
        if (lc->socket_mode != l->mode)
            note(&d, "listener %s (%s): socket_mode %04o -> %04o", lc->name, l->listen, l->mode,
                 lc->socket_mode);
        if (!same(lc->socket_owner, l->owner))
            note(&d, "listener %s (%s): socket_owner %s -> %s", lc->name, l->listen,
                 or_default(l->owner), or_default(lc->socket_owner));
        if (!same(lc->socket_group, l->group))
            note(&d, "listener %s (%s): socket_group %s -> %s", lc->name, l->listen,
                 or_default(l->group), or_default(lc->socket_group));
    }
    for (size_t j = 0; j < cfg->nlisteners; j++) {
        int found = 0;
        for (size_t i = 0; i < f->nlisteners && !found; i++)
            found = strcmp(f->listeners[i].listen, cfg->listeners[j].listen) == 0;
        if (!found)
            note(&d, "listener %s (%s) added", cfg->listeners[j].name, cfg->listeners[j].listen);
    }
    return d.count;
}
