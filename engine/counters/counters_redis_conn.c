/* The Redis backend's connection (counters_redis.h): hiredis's async API
 * on the loop (through counters_redis_uv.c), server discovery (servers in turn, or the Sentinels'
 * primary), the script loaded once per connection, deadlines, backoff. */
#include "counters/counters_redis.h"
#include "counters/counters_redis_cmd.h"
#include "counters/counters_redis_uv.h"

#include "counters/counters.h"
#include "core/log.h"
#include "core/mem.h"

#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { ST_DOWN, ST_DISCOVER, ST_CONNECTING, ST_READY };

#define BACKOFF_MIN_MS 50

struct op_rconn {
    uv_loop_t *loop;
    uv_timer_t *retry, *watch;
    int open_timers;         /* freed when both are closed, after free */
    redisAsyncContext *ac;   /* the server */
    redisAsyncContext *sac;  /* a Sentinel being asked */
    int state, freeing;
    char **servers, **sentinels;
    size_t nservers, nsentinels, next_server, next_sentinel;
    char *master, *password, *script;
    size_t db;
    uint64_t connect_ms, command_ms, backoff_max_ms, backoff_ms, connect_deadline;
    char host[256];
    int port;
    char sha[41];
    op_rcmd_t waiting, sent; /* list heads: before the script is loaded; on the wire */
    char health[400];
};

/* ---- commands on the wire (built by counters_redis_cmd.c) ---- */

static void list_init(op_rcmd_t *h)
{
    h->next = h->prev = h;
}

static void list_add(op_rcmd_t *h, op_rcmd_t *c)
{
    c->prev = h->prev;
    c->next = h;
    h->prev->next = c;
    h->prev = c;
}

static void list_del(op_rcmd_t *c)
{
    c->prev->next = c->next;
    c->next->prev = c->prev;
    c->next = c->prev = c;
}

static void finish(op_rcmd_t *cmd, int rc)
{
    cmd->rc = rc;
    cmd->cb(cmd, NULL);
}

static void fail_list(op_rcmd_t *h, int rc)
{
    while (h->next != h) {
        op_rcmd_t *c = h->next;
        list_del(c);
        finish(c, rc);
    }
}

/* ---- the connection's life ---- */

static void start(op_rconn_t *r);
static void on_watch(uv_timer_t *t);

static uint64_t now_ms(const op_rconn_t *r)
{
    return uv_now(r->loop);
}

/* The loop runs while commands wait (outpostd test has nothing else that
 * keeps it), and never because of an idle connection (the daemon ends). */
static void hold_loop(op_rconn_t *r)
{
    if (r->sent.next != &r->sent || r->waiting.next != &r->waiting)
        uv_ref((uv_handle_t *)r->watch);
    else
        uv_unref((uv_handle_t *)r->watch);
}

static void arm_watch(op_rconn_t *r)
{
    hold_loop(r);
    uint64_t due = UINT64_MAX;
    if (r->state == ST_DISCOVER || r->state == ST_CONNECTING)
        due = r->connect_deadline;
    if (r->sent.next != &r->sent && r->sent.next->deadline < due)
        due = r->sent.next->deadline;
    if (r->waiting.next != &r->waiting && r->waiting.next->deadline < due)
        due = r->waiting.next->deadline;
    if (due == UINT64_MAX) {
        uv_timer_stop(r->watch);
        return;
    }
    uint64_t now = now_ms(r);
    uv_timer_start(r->watch, on_watch, due > now ? due - now : 0, 0);
}

static void on_retry(uv_timer_t *t)
{
    start(t->data);
}

/* The attempt or the connection failed (its context is gone or going):
 * what waited fails, the next attempt comes after the backoff. */
static void down(op_rconn_t *r, const char *why)
{
    int was = r->state;
    r->state = ST_DOWN;
    if (r->freeing)
        return;
    snprintf(r->health, sizeof r->health, "redis %s:%d: %s", r->host[0] ? r->host : "-", r->port,
             why);
    if (was == ST_READY)
        op_error("counters: %s; counting answers unavailable until it is back", r->health);
    else
        op_warn("counters: %s; next attempt in %llu ms", r->health,
                (unsigned long long)r->backoff_ms);
    fail_list(&r->waiting, OP_COUNTERS_EIO);
    uv_timer_stop(r->watch);
    uv_timer_start(r->retry, on_retry, r->backoff_ms, 0);
    r->backoff_ms = r->backoff_ms * 2 > r->backoff_max_ms ? r->backoff_max_ms : r->backoff_ms * 2;
}

/* Drops the contexts ourselves (a deadline, a replica): their pending
 * commands fail through on_reply with a NULL reply. */
static void kill_conn(op_rconn_t *r, const char *why)
{
    redisAsyncContext *ac = r->ac, *sac = r->sac;
    r->ac = r->sac = NULL;
    r->state = ST_DOWN; /* a command sent from a failing one's callback is refused */
    if (sac != NULL)
        redisAsyncFree(sac);
    if (ac != NULL)
        redisAsyncFree(ac);
    down(r, why);
}

static void on_watch(uv_timer_t *t)
{
    op_rconn_t *r = t->data;
    uint64_t now = now_ms(r);
    if ((r->state == ST_DISCOVER || r->state == ST_CONNECTING) && now >= r->connect_deadline) {
        kill_conn(r, "no connection within connect_timeout");
        return;
    }
    if (r->sent.next != &r->sent && r->sent.next->deadline <= now) {
        kill_conn(r, "no answer within command_timeout");
        return;
    }
    while (r->waiting.next != &r->waiting && r->waiting.next->deadline <= now) {
        op_rcmd_t *c = r->waiting.next;
        list_del(c);
        finish(c, OP_COUNTERS_EIO);
    }
    arm_watch(r);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *priv);

/* The command goes out as one piece (op__rcmd_frame).  hiredis only
 * appends it to its output buffer; the loop writes that buffer once it
 * polls the socket writable, so the commands of one loop iteration leave
 * in one write. */
static int issue(op_rconn_t *r, op_rcmd_t *cmd)
{
    size_t len;
    char *heap;
    const char *p = cmd->noscript ? op__rcmd_frame(cmd, "EVAL", r->script, &len, &heap)
                                  : op__rcmd_frame(cmd, "EVALSHA", r->sha, &len, &heap);
    if (p == NULL)
        return -1; /* no arguments: not a call of the script */
    int rc = redisAsyncFormattedCommand(r->ac, on_reply, cmd, p, len);
    free(heap);
    if (rc != REDIS_OK)
        return -1;
    list_add(&r->sent, cmd);
    return 0;
}

static void on_reply(redisAsyncContext *ac, void *reply_, void *priv)
{
    op_rconn_t *r = ac->data;
    op_rcmd_t *cmd = priv;
    redisReply *reply = reply_;
    list_del(cmd);
    hold_loop(r);
    if (reply == NULL) {
        finish(cmd, r->freeing ? OP_COUNTERS_ECANCELLED : OP_COUNTERS_EIO);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "NOSCRIPT", 8) == 0 &&
        !cmd->noscript && ac == r->ac) {
        cmd->noscript = 1; /* SCRIPT FLUSH, or another server: EVAL loads it again */
        if (issue(r, cmd) < 0)
            finish(cmd, OP_COUNTERS_EIO);
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "READONLY", 8) == 0) {
        finish(cmd, OP_COUNTERS_EIO);
        if (ac == r->ac)
            kill_conn(r, "the server is a replica now (READONLY)");
        return;
    }
    if (reply->type == REDIS_REPLY_ERROR)
        op_error("counters: redis %s:%d answered: %s", r->host, r->port, reply->str);
    cmd->cb(cmd, reply);
}

static void on_script(redisAsyncContext *ac, void *reply_, void *priv)
{
    op_rconn_t *r = priv;
    redisReply *reply = reply_;
    if (reply == NULL || ac != r->ac)
        return; /* the connection went: down() runs from its callback */
    if (reply->type != REDIS_REPLY_STRING || reply->len != 40) {
        char why[300];
        snprintf(why, sizeof why, "SCRIPT LOAD failed: %s",
                 reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected answer");
        kill_conn(r, why);
        return;
    }
    memcpy(r->sha, reply->str, 40);
    r->sha[40] = '\0';
    r->state = ST_READY;
    r->backoff_ms = BACKOFF_MIN_MS;
    r->health[0] = '\0';
    op_notice("counters: redis %s:%d ready (primary, script loaded)", r->host, r->port);
    while (r->waiting.next != &r->waiting) {
        op_rcmd_t *c = r->waiting.next;
        list_del(c);
        if (r->ac == NULL || issue(r, c) < 0)
            finish(c, OP_COUNTERS_EIO);
    }
    arm_watch(r);
}

/* ROLE: counting needs the primary (a list of servers may name replicas,
 * a Sentinel may not have switched yet). */
static void on_role(redisAsyncContext *ac, void *reply_, void *priv)
{
    op_rconn_t *r = priv;
    redisReply *reply = reply_;
    if (reply == NULL || ac != r->ac)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        char why[300];
        snprintf(why, sizeof why, "%s", reply->str);
        kill_conn(r, why);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING || strcmp(reply->element[0]->str, "master") != 0)
        kill_conn(r, "not a primary (ROLE)");
}

static void on_setup(redisAsyncContext *ac, void *reply_, void *priv)
{
    op_rconn_t *r = priv;
    redisReply *reply = reply_;
    if (reply == NULL || ac != r->ac || reply->type != REDIS_REPLY_ERROR)
        return;
    char why[300];
    snprintf(why, sizeof why, "%s", reply->str);
    kill_conn(r, why);
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    op_rconn_t *r = ac->data;
    if (status == REDIS_OK)
        return;
    if (ac == r->ac) {
        char why[300];
        snprintf(why, sizeof why, "connect: %s", ac->errstr);
        r->ac = NULL; /* hiredis frees it */
        down(r, why);
    } else if (ac == r->sac) {
        char why[300];
        snprintf(why, sizeof why, "sentinel: connect: %s", ac->errstr);
        r->sac = NULL;
        down(r, why);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    op_rconn_t *r = ac->data;
    (void)status;
    if (ac == r->ac) {
        char why[300];
        snprintf(why, sizeof why, "connection lost: %s", ac->err ? ac->errstr : "closed by the server");
        r->ac = NULL;
        down(r, why);
    } else if (ac == r->sac) {
        r->sac = NULL;
        if (r->state == ST_DISCOVER)
            down(r, "sentinel closed the connection");
    }
}

static int split_host(const char *hp, char *host, size_t hlen, int *port)
{
    const char *colon = strrchr(hp, ':');
    if (colon == NULL || (size_t)(colon - hp) >= hlen)
        return -1;
    memcpy(host, hp, (size_t)(colon - hp));
    host[colon - hp] = '\0';
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || p < 1 || p > 65535)
        return -1;
    *port = (int)p;
    return 0;
}

static redisAsyncContext *open_ctx(op_rconn_t *r, const char *host, int port)
{
    redisAsyncContext *ac = redisAsyncConnect(host, port);
    if (ac == NULL)
        return NULL;
    if (ac->err || op__redis_uv_attach(ac, r->loop) < 0) {
        redisAsyncFree(ac);
        return NULL;
    }
    ac->data = r;
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    return ac;
}

static void connect_server(op_rconn_t *r)
{
    r->ac = open_ctx(r, r->host, r->port);
    if (r->ac == NULL) {
        down(r, "cannot open a connection");
        return;
    }
    r->state = ST_CONNECTING;
    if (r->password != NULL)
        redisAsyncCommand(r->ac, on_setup, r, "AUTH %s", r->password);
    if (r->db != 0)
        redisAsyncCommand(r->ac, on_setup, r, "SELECT %zu", r->db);
    redisAsyncCommand(r->ac, on_role, r, "ROLE");
    redisAsyncCommand(r->ac, on_script, r, "SCRIPT LOAD %s", r->script);
    arm_watch(r);
}

static void on_master(redisAsyncContext *ac, void *reply_, void *priv)
{
    op_rconn_t *r = priv;
    redisReply *reply = reply_;
    if (reply == NULL || ac != r->sac)
        return;
    r->sac = NULL;
    int ok = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[0]->type == REDIS_REPLY_STRING &&
             reply->element[1]->type == REDIS_REPLY_STRING &&
             reply->element[0]->len < sizeof r->host;
    if (ok) {
        snprintf(r->host, sizeof r->host, "%s", reply->element[0]->str);
        r->port = atoi(reply->element[1]->str);
    }
    redisAsyncDisconnect(ac);
    if (!ok) {
        down(r, "the sentinel does not know the primary of master_name");
        return;
    }
    connect_server(r);
}

static void start(op_rconn_t *r)
{
    if (r->freeing)
        return;
    r->connect_deadline = now_ms(r) + r->connect_ms;
    if (r->nsentinels > 0) {
        char host[256];
        int port;
        const char *hp = r->sentinels[r->next_sentinel++ % r->nsentinels];
        if (split_host(hp, host, sizeof host, &port) < 0 ||
            (r->sac = open_ctx(r, host, port)) == NULL) {
            down(r, "cannot connect to a sentinel");
            return;
        }
        r->state = ST_DISCOVER;
        redisAsyncCommand(r->sac, on_master, r, "SENTINEL get-master-addr-by-name %s", r->master);
        arm_watch(r);
        return;
    }
    const char *hp = r->servers[r->next_server++ % r->nservers];
    if (split_host(hp, r->host, sizeof r->host, &r->port) < 0) {
        down(r, "bad server address");
        return;
    }
    connect_server(r);
}

static char *read_password(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "redis password_file %s: cannot read it", path);
        return NULL;
    }
    char line[1024] = "";
    if (fgets(line, sizeof line, f) == NULL)
        line[0] = '\0';
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    return op_strdup(line);
}

static char **copy_list(char *const *l, size_t n)
{
    char **c = op_calloc(n + 1, sizeof *c);
    for (size_t i = 0; i < n; i++)
        c[i] = op_strdup(l[i]);
    return c;
}

op_rconn_t *op_rconn_new(uv_loop_t *loop, const op_redis_conf_t *cfg, const char *script,
                         char *err, size_t errlen)
{
    if (loop == NULL) {
        snprintf(err, errlen, "the redis backend needs an event loop");
        return NULL;
    }
    if (cfg->nservers == 0 && cfg->nsentinels == 0) {
        snprintf(err, errlen, "redis { } names no servers and no sentinels");
        return NULL;
    }
    for (size_t i = 0; i < cfg->nservers + cfg->nsentinels; i++) {
        const char *hp = i < cfg->nservers ? cfg->servers[i] : cfg->sentinels[i - cfg->nservers];
        char host[256];
        int port;
        if (split_host(hp, host, sizeof host, &port) < 0) {
            snprintf(err, errlen, "redis: '%s' is not HOST:PORT", hp);
            return NULL;
        }
    }
    op_rconn_t *r = op_calloc(1, sizeof *r);
    if (cfg->password_file != NULL && (r->password = read_password(cfg->password_file, err, errlen)) == NULL) {
        free(r);
        return NULL;
    }
    r->loop = loop;
    r->servers = copy_list(cfg->servers, cfg->nservers);
    r->nservers = cfg->nservers;
    r->sentinels = copy_list(cfg->sentinels, cfg->nsentinels);
    r->nsentinels = cfg->nsentinels;
    r->master = op_strdup(cfg->master_name != NULL ? cfg->master_name : "mymaster");
    r->script = op_strdup(script);
    r->db = cfg->db;
    r->connect_ms = (uint64_t)(cfg->connect_timeout * 1000);
    r->command_ms = (uint64_t)(cfg->command_timeout * 1000);
    r->backoff_max_ms = (uint64_t)(cfg->reconnect_max * 1000);
    if (r->backoff_max_ms < BACKOFF_MIN_MS)
        r->backoff_max_ms = BACKOFF_MIN_MS;
    r->backoff_ms = BACKOFF_MIN_MS;
    list_init(&r->waiting);
    list_init(&r->sent);
    r->retry = op_calloc(1, sizeof *r->retry);
    r->watch = op_calloc(1, sizeof *r->watch);
    uv_timer_init(loop, r->retry);
    uv_timer_init(loop, r->watch);
    uv_unref((uv_handle_t *)r->retry);
    uv_unref((uv_handle_t *)r->watch);
    r->retry->data = r->watch->data = r;
    r->open_timers = 2;
    snprintf(r->health, sizeof r->health, "redis: connecting");
    start(r);
    return r;
}

int op_rconn_send(op_rconn_t *r, op_rcmd_t *cmd)
{
    if (r->state == ST_DOWN || r->freeing)
        return OP_COUNTERS_EIO;
    cmd->deadline = now_ms(r) + r->command_ms;
    cmd->noscript = 0;
    cmd->rc = 0;
    if (r->state != ST_READY) {
        list_add(&r->waiting, cmd);
    } else if (issue(r, cmd) < 0) {
        return OP_COUNTERS_EIO;
    }
    if (!uv_is_active((uv_handle_t *)r->watch))
        arm_watch(r);
    else
        hold_loop(r);
    return 0;
}

int op_rconn_up(const op_rconn_t *r)
{
    return r->state != ST_DOWN;
}

const char *op_rconn_health(const op_rconn_t *r)
{
    return r->state == ST_READY ? NULL : r->health;
}

static void timer_closed(uv_handle_t *h)
{
    op_rconn_t *r = h->data;
    free(h);
    if (--r->open_timers > 0)
        return;
    for (size_t i = 0; i < r->nservers; i++)
        free(r->servers[i]);
    for (size_t i = 0; i < r->nsentinels; i++)
        free(r->sentinels[i]);
    free(r->servers);
    free(r->sentinels);
    free(r->master);
    free(r->password);
    free(r->script);
    free(r);
}

void op_rconn_free(op_rconn_t *r)
{
    if (r == NULL)
        return;
    r->freeing = 1;
    r->state = ST_DOWN;
    fail_list(&r->waiting, OP_COUNTERS_ECANCELLED);
    redisAsyncContext *ac = r->ac, *sac = r->sac;
    r->ac = r->sac = NULL;
    if (sac != NULL)
        redisAsyncFree(sac);
    if (ac != NULL)
        redisAsyncFree(ac); /* what was sent fails through on_reply: ECANCELLED */
    fail_list(&r->sent, OP_COUNTERS_ECANCELLED);
    uv_close((uv_handle_t *)r->retry, timer_closed);
    uv_close((uv_handle_t *)r->watch, timer_closed);
}
