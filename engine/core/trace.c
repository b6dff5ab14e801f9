/* The trace of an explained request (trace.h). */
#include "core/trace.h"

#include "core/mem.h"
#include "lib/strbuf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_EXTRA 10

typedef struct {
    char *key, *str; /* str NULL: num */
    int64_t num;
} extra_t;

typedef struct {
    int check;           /* index of its check, -1 outside any */
    char *kind, *query, *source, *result;
    uint64_t t0, elapsed_us;
    int ended;
    extra_t extra[MAX_EXTRA];
    size_t nextra;
} step_t;

typedef struct {
    char *id, *description, *mode, *verdict, *text;
    uint64_t t0, elapsed_us;
} check_t;

struct op_trace {
    check_t *checks;
    size_t nchecks, capchecks;
    step_t *steps;
    size_t nsteps, capsteps;
    int current; /* the check running, -1 between checks */
};

uint64_t op_trace_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? op_strdup(s) : NULL;
}

op_trace_t *op_trace_new(void)
{
    op_trace_t *t = op_calloc(1, sizeof *t);
    t->current = -1;
    return t;
}

void op_trace_free(op_trace_t *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->nchecks; i++) {
        check_t *c = &t->checks[i];
        free(c->id);
        free(c->description);
        free(c->mode);
        free(c->verdict);
        free(c->text);
    }
    for (size_t i = 0; i < t->nsteps; i++) {
        step_t *s = &t->steps[i];
        free(s->kind);
        free(s->query);
        free(s->source);
        free(s->result);
        for (size_t k = 0; k < s->nextra; k++) {
            free(s->extra[k].key);
            free(s->extra[k].str);
        }
    }
    free(t->checks);
    free(t->steps);
    free(t);
}

void op_trace_check_begin(op_trace_t *t, const char *id, const char *description,
                          const char *mode)
{
    if (t == NULL)
        return;
    if (t->nchecks == t->capchecks) {
        t->capchecks = t->capchecks * 2 + 8;
        t->checks = op_realloc(t->checks, t->capchecks * sizeof *t->checks);
    }
    check_t *c = &t->checks[t->nchecks];
    memset(c, 0, sizeof *c);
    c->id = op_strdup(id);
    c->description = op_strdup(description ? description : "");
    c->mode = op_strdup(mode ? mode : "enforce");
    c->t0 = op_trace_now_us();
    t->current = (int)t->nchecks++;
}

void op_trace_check_end(op_trace_t *t, const char *verdict, const char *text)
{
    if (t == NULL || t->current < 0)
        return;
    check_t *c = &t->checks[t->current];
    c->verdict = op_strdup(verdict ? verdict : "pass");
    c->text = dup_or_null(text);
    c->elapsed_us = op_trace_now_us() - c->t0;
    t->current = -1;
}

int op_trace_step(op_trace_t *t, const char *kind, const char *query, const char *source)
{
    if (t == NULL)
        return -1;
    if (t->nsteps == t->capsteps) {
        t->capsteps = t->capsteps * 2 + 8;
        t->steps = op_realloc(t->steps, t->capsteps * sizeof *t->steps);
    }
    step_t *s = &t->steps[t->nsteps];
    memset(s, 0, sizeof *s);
    s->check = t->current;
    s->kind = op_strdup(kind);
    s->query = op_strdup(query ? query : "");
    s->source = dup_or_null(source);
    s->t0 = op_trace_now_us();
    return (int)t->nsteps++;
}

void op_trace_step_end(op_trace_t *t, int step, const char *source, const char *result)
{
    if (t == NULL || step < 0 || (size_t)step >= t->nsteps)
        return;
    step_t *s = &t->steps[step];
    if (source != NULL) {
        free(s->source);
        s->source = op_strdup(source);
    }
    free(s->result);
    s->result = dup_or_null(result);
    s->elapsed_us = op_trace_now_us() - s->t0;
    s->ended = 1;
}

static extra_t *extra_slot(op_trace_t *t, int step, const char *key)
{
    if (t == NULL || step < 0 || (size_t)step >= t->nsteps)
        return NULL;
    step_t *s = &t->steps[step];
    if (s->nextra == MAX_EXTRA)
        return NULL;
    extra_t *e = &s->extra[s->nextra++];
    e->key = op_strdup(key);
    e->str = NULL;
    e->num = 0;
    return e;
}

void op_trace_step_num(op_trace_t *t, int step, const char *key, int64_t value)
{
    extra_t *e = extra_slot(t, step, key);
    if (e != NULL)
        e->num = value;
}

void op_trace_step_str(op_trace_t *t, int step, const char *key, const char *value)
{
    extra_t *e = extra_slot(t, step, key);
    if (e != NULL)
        e->str = op_strdup(value ? value : "");
}

/* ---- rendering ---- */

/* Time for people: 42 us, 1.3 ms, 2.10 s. */
static void put_time(op_sb_t *b, uint64_t us)
{
    if (us < 1000)
        op_sb_printf(b, "%llu us", (unsigned long long)us);
    else if (us < 1000000)
        op_sb_printf(b, "%.1f ms", (double)us / 1000.0);
    else
        op_sb_printf(b, "%.2f s", (double)us / 1e6);
}

static void text_step(op_sb_t *b, const step_t *s)
{
    op_sb_printf(b, "      %s %s", s->kind, s->query);
    if (s->source != NULL)
        op_sb_printf(b, " [%s", s->source);
    if (s->ended) {
        op_sb_printf(b, s->source != NULL ? ", " : " [");
        put_time(b, s->elapsed_us);
        op_sb_printf(b, "]");
    } else if (s->source != NULL) {
        op_sb_printf(b, "]");
    }
    if (s->result != NULL)
        op_sb_printf(b, " -> %s", s->result);
    else if (!s->ended)
        op_sb_printf(b, " -> (no answer before the request ended)");
    op_sb_printf(b, "\n");
}

static void json_step(op_sb_t *b, const step_t *s)
{
    op_sb_printf(b, "{\"kind\":");
    op_sb_json(b, s->kind);
    op_sb_printf(b, ",\"query\":");
    op_sb_json(b, s->query);
    op_sb_printf(b, ",\"source\":");
    if (s->source != NULL)
        op_sb_json(b, s->source);
    else
        op_sb_printf(b, "null");
    op_sb_printf(b, ",\"result\":");
    if (s->result != NULL)
        op_sb_json(b, s->result);
    else
        op_sb_printf(b, "null");
    if (s->ended)
        op_sb_printf(b, ",\"elapsed_us\":%llu", (unsigned long long)s->elapsed_us);
    for (size_t k = 0; k < s->nextra; k++) {
        op_sb_printf(b, ",");
        op_sb_json(b, s->extra[k].key);
        op_sb_printf(b, ":");
        if (s->extra[k].str != NULL)
            op_sb_json(b, s->extra[k].str);
        else
            op_sb_printf(b, "%lld", (long long)s->extra[k].num);
    }
    op_sb_printf(b, "}");
}

static void json_steps_of(op_sb_t *b, const op_trace_t *t, int check)
{
    op_sb_printf(b, "[");
    int first = 1;
    for (size_t i = 0; i < t->nsteps; i++) {
        if (t->steps[i].check != check)
            continue;
        if (!first)
            op_sb_printf(b, ",");
        first = 0;
        json_step(b, &t->steps[i]);
    }
    op_sb_printf(b, "]");
}

char *op_trace_render(const op_trace_t *t, int json, const char *service, const char *tenant,
                      uint64_t generation, const char *action, const char *check,
                      const char *reason, uint64_t elapsed_us)
{
    op_sb_t b;
    op_sb_init(&b, 1024);
    if (json) {
        op_sb_printf(&b, "{\"service\":");
        op_sb_json(&b, service);
        op_sb_printf(&b, ",\"tenant\":");
        op_sb_json(&b, tenant ? tenant : "");
        op_sb_printf(&b, ",\"generation\":%llu,\"dry_run\":true,\"checks\":[", (unsigned long long)generation);
        for (size_t i = 0; t != NULL && i < t->nchecks; i++) {
            const check_t *c = &t->checks[i];
            op_sb_printf(&b, "%s{\"id\":", i ? "," : "");
            op_sb_json(&b, c->id);
            op_sb_printf(&b, ",\"description\":");
            op_sb_json(&b, c->description);
            op_sb_printf(&b, ",\"mode\":");
            op_sb_json(&b, c->mode);
            op_sb_printf(&b, ",\"verdict\":");
            op_sb_json(&b, c->verdict ? c->verdict : "not-finished");
            op_sb_printf(&b, ",\"text\":");
            if (c->text != NULL)
                op_sb_json(&b, c->text);
            else
                op_sb_printf(&b, "null");
            op_sb_printf(&b, ",\"elapsed_us\":%llu,\"steps\":", (unsigned long long)c->elapsed_us);
            json_steps_of(&b, t, (int)i);
            op_sb_printf(&b, "}");
        }
        op_sb_printf(&b, "],\"steps\":");
        if (t != NULL)
            json_steps_of(&b, t, -1);
        else
            op_sb_printf(&b, "[]");
        op_sb_printf(&b, ",\"answer\":{\"action\":");
        op_sb_json(&b, action);
        op_sb_printf(&b, ",\"check\":");
        op_sb_json(&b, check);
        op_sb_printf(&b, ",\"reason\":");
        op_sb_json(&b, reason);
        op_sb_printf(&b, ",\"elapsed_us\":%llu}}\n", (unsigned long long)elapsed_us);
        return b.p;
    }
    op_sb_printf(&b, "service %s, tenant %s, generation %llu (dry run: counters read, nothing written)\n",
        service, tenant && *tenant ? tenant : "-", (unsigned long long)generation);
    for (size_t i = 0; t != NULL && i < t->nsteps; i++)
        if (t->steps[i].check < 0)
            text_step(&b, &t->steps[i]);
    for (size_t i = 0; t != NULL && i < t->nchecks; i++) {
        const check_t *c = &t->checks[i];
        op_sb_printf(&b, "%-5s %-9s %-12s ", c->id, c->mode, c->verdict ? c->verdict : "not-finished");
        size_t at = b.n;
        put_time(&b, c->elapsed_us);
        op_sb_printf(&b, "%*s  %s\n", (int)(at + 9 > b.n ? at + 9 - b.n : 0), "", c->description);
        if (c->text != NULL)
            op_sb_printf(&b, "      %s\n", c->text);
        for (size_t k = 0; k < t->nsteps; k++)
            if (t->steps[k].check == (int)i)
                text_step(&b, &t->steps[k]);
    }
    op_sb_printf(&b, "answer: check=%s reason=%s elapsed ", check, reason);
    put_time(&b, elapsed_us);
    op_sb_printf(&b, "\naction=%s\n", action);
    return b.p;
}
