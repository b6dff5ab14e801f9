/* The trace of an explained request (trace.h). */
#include "core/trace.h"

#include "core/mem.h"

#include <stdarg.h>
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

typedef struct {
    char *p;
    size_t n, cap;
} buf_t;

static void put(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (n >= 0 && b->n + (size_t)n < b->cap) {
            b->n += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 64;
        b->p = op_realloc(b->p, b->cap);
    }
}

static void put_js(buf_t *b, const char *s)
{
    put(b, "\"");
    for (; s != NULL && *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            put(b, "\\%c", ch);
        else if (ch < 0x20)
            put(b, "\\u%04x", ch);
        else
            put(b, "%c", ch);
    }
    put(b, "\"");
}

/* Time for people: 42 us, 1.3 ms, 2.10 s. */
static void put_time(buf_t *b, uint64_t us)
{
    if (us < 1000)
        put(b, "%llu us", (unsigned long long)us);
    else if (us < 1000000)
        put(b, "%.1f ms", (double)us / 1000.0);
    else
        put(b, "%.2f s", (double)us / 1e6);
}

static void text_step(buf_t *b, const step_t *s)
{
    put(b, "      %s %s", s->kind, s->query);
    if (s->source != NULL)
        put(b, " [%s", s->source);
    if (s->ended) {
        put(b, s->source != NULL ? ", " : " [");
        put_time(b, s->elapsed_us);
        put(b, "]");
    } else if (s->source != NULL) {
        put(b, "]");
    }
    if (s->result != NULL)
        put(b, " -> %s", s->result);
    else if (!s->ended)
        put(b, " -> (no answer before the request ended)");
    put(b, "\n");
}

static void json_step(buf_t *b, const step_t *s)
{
    put(b, "{\"kind\":");
    put_js(b, s->kind);
    put(b, ",\"query\":");
    put_js(b, s->query);
    put(b, ",\"source\":");
    if (s->source != NULL)
        put_js(b, s->source);
    else
        put(b, "null");
    put(b, ",\"result\":");
    if (s->result != NULL)
        put_js(b, s->result);
    else
        put(b, "null");
    if (s->ended)
        put(b, ",\"elapsed_us\":%llu", (unsigned long long)s->elapsed_us);
    for (size_t k = 0; k < s->nextra; k++) {
        put(b, ",");
        put_js(b, s->extra[k].key);
        put(b, ":");
        if (s->extra[k].str != NULL)
            put_js(b, s->extra[k].str);
        else
            put(b, "%lld", (long long)s->extra[k].num);
    }
    put(b, "}");
}

static void json_steps_of(buf_t *b, const op_trace_t *t, int check)
{
    put(b, "[");
    int first = 1;
    for (size_t i = 0; i < t->nsteps; i++) {
        if (t->steps[i].check != check)
            continue;
        if (!first)
            put(b, ",");
        first = 0;
        json_step(b, &t->steps[i]);
    }
    put(b, "]");
}

char *op_trace_render(const op_trace_t *t, int json, const char *service, const char *tenant,
                      uint64_t generation, const char *action, const char *check,
                      const char *reason, uint64_t elapsed_us)
{
    buf_t b = {op_malloc(1024), 0, 1024};
    b.p[0] = '\0';
    if (json) {
        put(&b, "{\"service\":");
        put_js(&b, service);
        put(&b, ",\"tenant\":");
        put_js(&b, tenant ? tenant : "");
        put(&b, ",\"generation\":%llu,\"dry_run\":true,\"checks\":[", (unsigned long long)generation);
        for (size_t i = 0; t != NULL && i < t->nchecks; i++) {
            const check_t *c = &t->checks[i];
            put(&b, "%s{\"id\":", i ? "," : "");
            put_js(&b, c->id);
            put(&b, ",\"description\":");
            put_js(&b, c->description);
            put(&b, ",\"mode\":");
            put_js(&b, c->mode);
            put(&b, ",\"verdict\":");
            put_js(&b, c->verdict ? c->verdict : "not-finished");
            put(&b, ",\"text\":");
            if (c->text != NULL)
                put_js(&b, c->text);
            else
                put(&b, "null");
            put(&b, ",\"elapsed_us\":%llu,\"steps\":", (unsigned long long)c->elapsed_us);
            json_steps_of(&b, t, (int)i);
            put(&b, "}");
        }
        put(&b, "],\"steps\":");
        if (t != NULL)
            json_steps_of(&b, t, -1);
        else
            put(&b, "[]");
        put(&b, ",\"answer\":{\"action\":");
        put_js(&b, action);
        put(&b, ",\"check\":");
        put_js(&b, check);
        put(&b, ",\"reason\":");
        put_js(&b, reason);
        put(&b, ",\"elapsed_us\":%llu}}\n", (unsigned long long)elapsed_us);
        return b.p;
    }
    put(&b, "service %s, tenant %s, generation %llu (dry run: counters read, nothing written)\n",
        service, tenant && *tenant ? tenant : "-", (unsigned long long)generation);
    for (size_t i = 0; t != NULL && i < t->nsteps; i++)
        if (t->steps[i].check < 0)
            text_step(&b, &t->steps[i]);
    for (size_t i = 0; t != NULL && i < t->nchecks; i++) {
        const check_t *c = &t->checks[i];
        put(&b, "%-5s %-9s %-12s ", c->id, c->mode, c->verdict ? c->verdict : "not-finished");
        size_t at = b.n;
        put_time(&b, c->elapsed_us);
        put(&b, "%*s  %s\n", (int)(at + 9 > b.n ? at + 9 - b.n : 0), "", c->description);
        if (c->text != NULL)
            put(&b, "      %s\n", c->text);
        for (size_t k = 0; k < t->nsteps; k++)
            if (t->steps[k].check == (int)i)
                text_step(&b, &t->steps[k]);
    }
    put(&b, "answer: check=%s reason=%s elapsed ", check, reason);
    put_time(&b, elapsed_us);
    put(&b, "\naction=%s\n", action);
    return b.p;
}
