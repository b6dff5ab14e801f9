/* The commands of the control socket (control.h): status, reload, counter
 * show|reset|top, limit set|show|clear, explain.  Each answers text for people or
 * JSON for scripts. */
#include "control/control.h"

#include "control/explain.h"
#include "counters/counters.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/services.h"

#include <pwd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static op_control_hooks_t hooks;

void op_control_set_hooks(const op_control_hooks_t *h)
{
    if (h != NULL)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof hooks);
}

typedef struct {
    char *p;
    size_t n, cap;
    int json;
} out_t;

static void put(out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(out_t *o, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->n, o->cap - o->n, fmt, ap);
        va_end(ap);
        if (n >= 0 && o->n + (size_t)n < o->cap) {
            o->n += (size_t)n;
            return;
        }
        o->cap = o->cap * 2 + (size_t)n + 64;
        o->p = op_realloc(o->p, o->cap);
    }
}

/* A JSON string literal. */
static void put_js(out_t *o, const char *s)
{
    put(o, "\"");
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            put(o, "\\%c", ch);
        else if (ch < 0x20)
            put(o, "\\u%04x", ch);
        else
            put(o, "%c", ch);
    }
    put(o, "\"");
}

static char *fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *fail(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '\n')
            *p = ' ';
    size_t len = strlen(msg) + 32;
    char *t = op_malloc(len);
    snprintf(t, len, "error %d %s\n", code, msg);
    return t;
}

static char *done(out_t *o)
{
    if (o->json)
        put(o, "\n");
    return o->p;
}

static void fmt_time(int64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static op_counters_t *counters(void)
{
    return op_services ? op_services->counters : NULL;
}

static char *counters_error(int rc, const char *limit)
{
    if (rc == OP_COUNTERS_ENOLIMIT)
        return fail(1, "no limit '%s' in the configuration", limit);
    if (rc == OP_COUNTERS_EINVAL)
        return fail(2, "bad argument");
    if (rc == OP_COUNTERS_ENOTFOUND)
        return fail(1, "nothing to clear: no override for that limit and subject");
    return fail(1, "the counters store failed (see the daemon's log)");
}

static char *cmd_status(out_t *o)
{
    op_control_status_t st = {0, 0, 0};
    if (hooks.status != NULL)
        hooks.status(hooks.data, &st);
    op_counters_t *c = counters();
    unsigned long long disk = c ? (unsigned long long)op_counters_disk_bytes(c) : 0;
    const char *why = c ? op_counters_health(c) : NULL;
    char clean[300] = "";
    for (size_t i = 0; why != NULL && why[i] != '\0' && i + 1 < sizeof clean; i++)
        clean[i] = why[i] == '"' || why[i] == '\\' || (unsigned char)why[i] < 0x20 ? ' ' : why[i];
    if (o->json) {
        put(o, "{\"version\":\"%s\",\"pid\":%d,\"generation\":%llu,\"connections\":%zu,"
               "\"uptime_s\":%.0f,\"counters_disk_bytes\":%llu,\"counters_store\":\"%s\","
               "\"counters_error\":\"%s\"}",
            OP_VERSION, (int)getpid(), (unsigned long long)st.generation, st.connections,
            st.started > 0 ? (double)time(NULL) - st.started : 0.0, disk,
            why ? "failing" : "ok", clean);
    } else {
        put(o, "outpostd %s, pid %d\ngeneration %llu\nconnections %zu\nuptime %.0fs\n"
               "counters on disk %llu bytes\ncounters store %s%s%s\n",
            OP_VERSION, (int)getpid(), (unsigned long long)st.generation, st.connections,
            st.started > 0 ? (double)time(NULL) - st.started : 0.0, disk,
            why ? "failing: " : "ok", clean, why ? " (counting answers unavailable until it recovers)" : "");
    }
    return done(o);
}

static char *cmd_reload(out_t *o)
{
    char err[2048];
    if (hooks.reload == NULL)
        return fail(1, "reload is not available: no daemon runs here");
    int rc = hooks.reload(hooks.data, err, sizeof err);
    if (rc < 0)
        return fail(1, "reload failed, the running generation keeps serving: %s", err);
    op_control_status_t st = {0, 0, 0};
    if (hooks.status != NULL)
        hooks.status(hooks.data, &st);
    /* Exit 5: applied, but not all of it; a script or systemd's
     * ExecReload must not take that for success. */
    if (rc > 0)
        return fail(5, "reloaded: generation %llu is current, but these changes need a restart: %s",
                    (unsigned long long)st.generation, err);
    if (o->json)
        put(o, "{\"reloaded\":true,\"generation\":%llu}", (unsigned long long)st.generation);
    else
        put(o, "reloaded: generation %llu is current\n", (unsigned long long)st.generation);
    return done(o);
}

/* A counters command in flight: the operator's call (counters.h's call
 * form) and the answer it will be written into.  A backend that waits for
 * its server (Redis) completes it from the loop; the loop never waits. */
typedef struct {
    op_counters_admin_t a;
    out_t o;
    int64_t now;
    op_control_done_cb done;
    void *data;
} job_t;

static char *show_text(out_t *o, const op_counters_admin_t *j, int64_t now)
{
    const op_counters_answer_t *a = &j->answer;
    char nf[64] = "now";
    if (a->next_free < 0)
        snprintf(nf, sizeof nf, "never");
    else if (a->next_free > now)
        fmt_time(a->next_free, nf, sizeof nf);
    if (o->json) {
        put(o, "{\"limit\":");
        put_js(o, j->limit);
        put(o, ",\"subject\":");
        put_js(o, j->subject);
        put(o, ",\"used\":%lld,\"max\":%lld,\"source\":\"%s\",\"remaining\":%lld,\"reserved\":%lld,"
               "\"window\":%lld,\"resolution\":%lld,\"next_free\":%lld}",
            (long long)a->used, (long long)a->max, op_counters_source_name(a->source),
            (long long)a->remaining, (long long)j->reserved, (long long)a->window,
            (long long)a->resolution, (long long)a->next_free);
    } else {
        put(o, "limit      %s\nsubject    %s\nused       %lld (of which reserved, not yet committed: %lld)\n"
               "max        %lld (%s)\nremaining  %lld\nwindow     %llds in buckets of %llds\n"
               "next slot  %s\n",
            j->limit, j->subject, (long long)a->used, (long long)j->reserved, (long long)a->max,
            op_counters_source_name(a->source), (long long)a->remaining, (long long)a->window,
            (long long)a->resolution, nf);
    }
    return done(o);
}

static char *top_text(out_t *o, const op_counters_admin_t *j)
{
    if (o->json) {
        put(o, "[");
        for (size_t i = 0; i < j->ntop; i++) {
            put(o, "%s{\"subject\":", i ? "," : "");
            put_js(o, j->top[i].subject);
            put(o, ",\"used\":%lld,\"max\":%lld}", (long long)j->top[i].used, (long long)j->top[i].max);
        }
        put(o, "]");
    } else {
        put(o, "%-8s %-8s %s\n", "used", "max", "subject");
        for (size_t i = 0; i < j->ntop; i++)
            put(o, "%-8lld %-8lld %s\n", (long long)j->top[i].used, (long long)j->top[i].max,
                j->top[i].subject);
    }
    return done(o);
}

static int show_one(const op_counters_override_t *ov, void *data)
{
    out_t *o = data;
    char set[64], until[64] = "no end";
    fmt_time(ov->set_at, set, sizeof set);
    if (ov->until != 0)
        fmt_time(ov->until, until, sizeof until);
    if (o->json) {
        put(o, "%s{\"limit\":", o->p[o->n - 1] == '[' ? "" : ",");
        put_js(o, ov->limit);
        put(o, ",\"subject\":");
        put_js(o, ov->subject);
        put(o, ",\"max\":%lld,\"until\":%lld,\"set_at\":%lld,\"expired\":%s,\"who\":",
            (long long)ov->max, (long long)ov->until, (long long)ov->set_at,
            ov->expired ? "true" : "false");
        put_js(o, ov->who);
        put(o, ",\"reason\":");
        put_js(o, ov->reason);
        put(o, "}");
    } else {
        put(o, "%s %s max %lld until %s%s; set %s by %s: %s\n", ov->limit, ov->subject,
            (long long)ov->max, until, ov->expired ? " (expired)" : "", set, ov->who, ov->reason);
    }
    return 0;
}

/* The answer of a finished job; frees what the call holds. */
static char *job_text(job_t *j)
{
    op_counters_admin_t *a = &j->a;
    out_t *o = &j->o;
    char *t;
    if (a->rc < 0 && a->op == OP_ADMIN_OVERRIDE_SET)
        t = fail(1, "limit set: %s", a->err[0] ? a->err : "the counters store failed (see the daemon's log)");
    else if (a->rc < 0)
        t = counters_error(a->rc, a->limit);
    else {
        switch (a->op) {
        case OP_ADMIN_SHOW:
            t = show_text(o, a, j->now);
            break;
        case OP_ADMIN_TOP:
            t = top_text(o, a);
            break;
        case OP_ADMIN_RESET:
            if (o->json)
                put(o, "{\"reset\":true}");
            else
                put(o, "counter %s %s reset\n", a->limit, a->subject);
            t = done(o);
            break;
        case OP_ADMIN_OVERRIDE_SET:
            if (o->json)
                put(o, "{\"set\":true}");
            else
                put(o, "limit %s for %s is now %lld%s\n", a->limit, a->subject, (long long)a->max,
                    a->until ? " until the given time" : "");
            t = done(o);
            break;
        case OP_ADMIN_OVERRIDE_CLEAR:
            if (o->json)
                put(o, "{\"cleared\":true}");
            else
                put(o, "override of %s for %s cleared\n", a->limit, a->subject);
            t = done(o);
            break;
        case OP_ADMIN_OVERRIDE_LIST:
        default:
            if (o->json)
                put(o, "[");
            for (size_t i = 0; i < a->noverrides; i++)
                show_one(&a->overrides[i], o);
            if (o->json)
                put(o, "]");
            else if (a->noverrides == 0)
                put(o, "no overrides\n");
            t = done(o);
            break;
        }
    }
    if (t != o->p)
        free(o->p);
    op_counters_admin_free(a);
    return t;
}

static void job_done(op_counters_admin_t *a)
{
    job_t *j = a->data;
    char *t = job_text(j);
    op_control_done_cb cb = j->done;
    void *data = j->data;
    free(j);
    cb(t, data);
}

/* Starts the job: its answer now, or NULL when it comes through done. */
static char *run_job(job_t *j, op_counters_t *c)
{
    j->a.cb = job_done;
    j->a.data = j;
    j->now = op_counters_now(c);
    if (op_counters_admin(c, &j->a) == OP_COUNTERS_STARTED)
        return NULL;
    char *t = job_text(j);
    free(j);
    return t;
}

static job_t *job_new(out_t *o, op_counters_admin_op_t op, const char *limit, const char *subject,
                      op_control_done_cb done_cb, void *data)
{
    job_t *j = op_calloc(1, sizeof *j);
    j->o = *o;
    o->p = NULL; /* the job's now */
    j->a.op = op;
    snprintf(j->a.limit, sizeof j->a.limit, "%s", limit ? limit : "");
    snprintf(j->a.subject, sizeof j->a.subject, "%s", subject ? subject : "");
    j->done = done_cb;
    j->data = data;
    return j;
}

static int key_fits(const char *s)
{
    return strlen(s) <= OP_COUNTERS_MAX_KEY;
}

static char *cmd_counter(out_t *o, char **f, size_t n, op_control_done_cb cb, void *data)
{
    op_counters_t *c = counters();
    if (n < 2)
        return fail(2, "counter: want show|reset NAME SUBJECT, or top NAME [COUNT]");
    if (c == NULL)
        return fail(1, "the counters service is not running");
    if (n >= 3 && (!key_fits(f[2]) || (n >= 4 && !key_fits(f[3]))))
        return fail(2, "bad argument");
    if (strcmp(f[1], "show") == 0 && n == 4)
        return run_job(job_new(o, OP_ADMIN_SHOW, f[2], f[3], cb, data), c);
    if (strcmp(f[1], "reset") == 0 && n == 4)
        return run_job(job_new(o, OP_ADMIN_RESET, f[2], f[3], cb, data), c);
    if (strcmp(f[1], "top") == 0 && (n == 3 || n == 4)) {
        char *end;
        long k = n == 4 ? strtol(f[3], &end, 10) : 10;
        if (n == 4 && (*end != '\0' || k < 1 || k > 1000))
            return fail(2, "counter top: COUNT must be 1 to 1000, not '%s'", f[3]);
        job_t *j = job_new(o, OP_ADMIN_TOP, f[2], NULL, cb, data);
        j->a.n = (size_t)k;
        return run_job(j, c);
    }
    return fail(2, "counter: want show|reset NAME SUBJECT, or top NAME [COUNT]");
}

static char *cmd_limit(out_t *o, char **f, size_t n, unsigned uid, op_control_done_cb cb,
                       void *data)
{
    op_counters_t *c = counters();
    if (c == NULL)
        return fail(1, "the counters service is not running");
    if (n >= 3 && (!key_fits(f[2]) || (n >= 4 && !key_fits(f[3]))))
        return fail(2, "bad argument");
    if (n == 7 && strcmp(f[1], "set") == 0) {
        char *end;
        long long max = strtoll(f[4], &end, 10), until = 0;
        if (*f[4] == '\0' || *end != '\0' || max < 0)
            return fail(2, "limit set: MAX must be a whole number >= 0, not '%s'", f[4]);
        until = strtoll(f[5], &end, 10);
        if (*end != '\0' || until < 0)
            return fail(2, "limit set: bad --until");
        struct passwd *pw = getpwuid((uid_t)uid);
        job_t *j = job_new(o, OP_ADMIN_OVERRIDE_SET, f[2], f[3], cb, data);
        snprintf(j->a.who, sizeof j->a.who, "%s", pw ? pw->pw_name : "?");
        if (pw == NULL)
            snprintf(j->a.who, sizeof j->a.who, "uid %u", uid);
        snprintf(j->a.reason, sizeof j->a.reason, "%s", f[6]);
        j->a.max = max;
        j->a.until = until;
        return run_job(j, c);
    }
    if (n == 4 && strcmp(f[1], "clear") == 0)
        return run_job(job_new(o, OP_ADMIN_OVERRIDE_CLEAR, f[2], f[3], cb, data), c);
    if ((n == 2 || n == 3) && strcmp(f[1], "show") == 0) {
        if (n == 3 && !op_counters_has_limit(c, f[2]))
            return fail(1, "no limit '%s' in the configuration", f[2]);
        return run_job(job_new(o, OP_ADMIN_OVERRIDE_LIST, n == 3 ? f[2] : NULL, NULL, cb, data), c);
    }
    return fail(2, "limit: want set NAME SUBJECT MAX UNTIL REASON, show [NAME], or clear NAME SUBJECT");
}

/* explain SERVICE TENANT NAME=VALUE...: the request run in dry-run mode
 * through the current generation (explain.h); answered when the policy
 * answers, which may be after lookups. */
typedef struct {
    op_control_done_cb done;
    void *data;
    int at_once;  /* op_explain_run has not returned yet */
    char *answer; /* the answer when it came at once */
} explain_job_t;

static char *explain_answer(char *text, int status)
{
    char *t;
    if (status != 0) {
        t = fail(status, "%s", text);
    } else {
        size_t len = strlen(text);
        t = op_malloc(len + 4);
        memcpy(t, "ok\n", 3);
        memcpy(t + 3, text, len + 1);
    }
    free(text);
    return t;
}

static void explain_done(char *text, int status, void *data)
{
    explain_job_t *j = data;
    char *t = explain_answer(text, status);
    if (j->at_once) {
        j->answer = t;
        return;
    }
    op_control_done_cb done_cb = j->done;
    void *done_data = j->data;
    free(j);
    done_cb(t, done_data);
}

static char *cmd_explain(char **f, size_t n, int json, op_control_done_cb cb, void *data)
{
    if (n < 4)
        return fail(2, "explain: want SERVICE TENANT NAME=VALUE... (SERVICE and TENANT may be empty)");
    op_gen_t *gen = op_explain_current();
    if (gen == NULL)
        return fail(1, "explain is not available: no daemon serves here (stopping, or outpostd test)");
    explain_job_t *j = op_calloc(1, sizeof *j);
    j->done = cb;
    j->data = data;
    j->at_once = 1;
    if (op_explain_run(op_explain_loop(), gen, f[1], f[2], f + 3, n - 3, json, explain_done, j)) {
        char *t = j->answer;
        free(j);
        return t;
    }
    j->at_once = 0;
    return NULL;
}

char *op_control_execute(char **f, size_t n, int json, unsigned uid, op_control_done_cb cb,
                         void *data)
{
    out_t o = {op_malloc(256), 0, 256, json};
    put(&o, "ok\n");
    char *r;
    if (strcmp(f[0], "status") == 0 && n == 1)
        r = cmd_status(&o);
    else if (strcmp(f[0], "reload") == 0 && n == 1)
        r = cmd_reload(&o);
    else if (strcmp(f[0], "stats") == 0 && n == 1)
        r = op__control_stats(json);
    else if (strcmp(f[0], "counter") == 0)
        r = cmd_counter(&o, f, n, cb, data);
    else if (strcmp(f[0], "limit") == 0)
        r = cmd_limit(&o, f, n, uid, cb, data);
    else if (strcmp(f[0], "explain") == 0)
        r = cmd_explain(f, n, json, cb, data);
    else
        r = fail(2, "unknown command '%s' (status, reload, stats, counter, limit, explain)", f[0]);
    if (r != o.p)
        free(o.p); /* NULL when a job took it */
    return r;
}
