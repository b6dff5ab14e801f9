#include "core/daemon.h"

#include "control/control.h"
#include "control/explain.h"
#include "core/fixed.h"
#include "core/notify.h"
#include "core/listener.h"
#include "core/log_config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/watchdog.h"
#include "core/mem.h"
#include "core/services.h"
#include "core/session.h"
#include "proto/milter.h"
#include "proto/milter_macros.h"
#include "proto/policy_session.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SWEEP_MS 1000

/* What the start fixed (sockets, identity, state_dir): what a reload
 * reports it cannot change. */
static op_fixed_t *fixed;

static void mkdir_p(const char *path, mode_t mode)
{
    char *dir = op_strdup(path);
    for (char *p = dir + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(dir, mode);
            *p = '/';
        }
    }
    mkdir(dir, mode);
    free(dir);
}

/* Descriptors beyond the connections: listeners, the store's files, the
 * lookups' sockets, the control socket, the log. */
#define FD_HEADROOM 256

/* Raises the soft descriptor limit to what max_connections needs (within
 * the hard limit, which needs no privilege): with too few, a flood on TCP
 * takes the descriptors and accept fails on the unix listener too, before
 * any cap of ours is reached.  At start and on reload. */
static void raise_fd_limit(const op_config_t *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)cfg->max_connections + FD_HEADROOM;
    if (rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur < want)
        op_warn("max_connections %zu needs %llu file descriptors, but the limit is %llu: "
                "connections will fail before max_connections; raise the limit (systemd: "
                "LimitNOFILE=) or lower max_connections", cfg->max_connections,
                (unsigned long long)want, (unsigned long long)rl.rlim_cur);
}

/* Builds the next generation from the configuration file on disk. */
static op_gen_t *build_generation(op_daemon_t *d, char *err, size_t errlen)
{
    op_config_t *cfg = op_config_load(d->config_path, err, errlen);
    if (cfg == NULL)
        return NULL;
    op_gen_t *gen = op_gen_create(cfg, d->generations + 1, &op_milter_gen_proto, err, errlen);
    if (gen != NULL)
        d->generations++;
    return gen;
}

static op_listener_t *find_listener(op_daemon_t *d, const char *listen)
{
    for (size_t i = 0; i < d->nlisteners; i++)
        if (strcmp(d->listeners[i]->listen, listen) == 0)
            return d->listeners[i];
    return NULL;
}

/* Listeners keep their sockets across reloads (the daemon may no longer
 * have the privileges to bind them); their service and tenant follow the
 * new configuration. */
static void rebind_listeners(op_daemon_t *d, const op_config_t *cfg)
{
    for (size_t i = 0; i < d->nlisteners; i++) {
        op_listener_t *l = d->listeners[i];
        const op_listener_conf_t *lc = NULL;
        for (size_t j = 0; j < cfg->nlisteners && lc == NULL; j++)
            if (strcmp(cfg->listeners[j].listen, l->listen) == 0)
                lc = &cfg->listeners[j];
        if (lc != NULL)
            op_listener_bind_conf(l, lc);
        else
            op_warn("reload: listener %s (%s) is no longer configured; it stays open, "
                    "serving service %s, until the daemon restarts", l->name, l->listen,
                    l->service);
    }
    for (size_t j = 0; j < cfg->nlisteners; j++)
        if (find_listener(d, cfg->listeners[j].listen) == NULL)
            op_warn("reload: listener %s (%s) is new; restart the daemon to open it",
                    cfg->listeners[j].name, cfg->listeners[j].listen);
}

/* The service manager's status line (systemctl status). */
static const char *status_line(const op_daemon_t *d, char *buf, size_t len)
{
    snprintf(buf, len, "%s generation %llu, %zu connections", d->stopping ? "draining:" : "serving:",
             (unsigned long long)d->current->number, d->nconns);
    return buf;
}

static int reload_generation(op_daemon_t *d, char *err, size_t errlen);

/* SIGHUP and outpostctl reload, between the manager's RELOADING=1 and
 * READY=1 (also when it fails: the old generation is ready). */
static int reload(op_daemon_t *d, char *err, size_t errlen)
{
    char st[128];
    op_notify_reloading();
    int rc = reload_generation(d, err, errlen);
    op_notify_ready(status_line(d, st, sizeof st));
    return rc;
}

/* Builds and installs the next generation: 0; 1 when it is current but
 * some changes need a restart (named in err); -1 with the error in err
 * (the running generation stays). */
static int reload_generation(op_daemon_t *d, char *err, size_t errlen)
{
    op_notice("reload: loading %s", d->config_path);
    op_gen_t *gen = build_generation(d, err, errlen);
    if (gen == NULL) {
        op_error("reload failed; generation %llu keeps serving: %s",
                 (unsigned long long)d->current->number, err);
        op_metrics_reload("failed");
        return -1;
    }
    rebind_listeners(d, gen->cfg);
    raise_fd_limit(gen->cfg);
    op_services_reload(gen->cfg);
    op_log_config_apply(gen->cfg);
    op_gen_t *old = d->current;
    d->current = gen;
    d->gen_loaded = (double)time(NULL);
    op_metrics_reload("ok");
    op_notice("reload: generation %llu is current; generation %llu finishes the requests "
              "in flight on it", (unsigned long long)gen->number,
              (unsigned long long)old->number);
    op_gen_unref(old);
    if (op_fixed_diff(fixed, gen->cfg, err, errlen) > 0) {
        op_warn("reload: generation %llu is current, but these changes need a restart: %s",
                (unsigned long long)gen->number, err);
        return 1;
    }
    return 0;
}

static int control_reload(void *data, char *err, size_t errlen)
{
    op_daemon_t *d = data;
    if (d->stopping) {
        snprintf(err, errlen, "the daemon is stopping");
        return -1;
    }
    return reload(d, err, errlen);
}

static void control_status(void *data, op_control_status_t *st)
{
    op_daemon_t *d = data;
    st->generation = d->current->number;
    st->connections = d->nconns;
    st->started = d->started;
}

/* For outpostctl explain (control/explain.h). */
static op_gen_t *current_generation(void *data)
{
    op_daemon_t *d = data;
    return d->stopping ? NULL : d->current;
}

static void finish_if_drained(op_daemon_t *d)
{
    if (!d->stopping || d->nconns > 0 || d->handles_closed)
        return;
    d->handles_closed = 1;
    op_notify_watchdog_stop();
    uv_close((uv_handle_t *)&d->sighup, NULL);
    uv_close((uv_handle_t *)&d->sigterm, NULL);
    uv_close((uv_handle_t *)&d->sigint, NULL);
    uv_close((uv_handle_t *)&d->sweep, NULL);
    if (d->metrics_tick.type == UV_TIMER) /* a daemon the tests build has none */
        uv_close((uv_handle_t *)&d->metrics_tick, NULL);
}

/* The gauges read when a scrape or `outpostctl stats` asks. */
static void collect_gauges(void *data)
{
    op_daemon_t *d = data;
    const char *none[1] = {NULL};
    op_metrics_set(op_metrics_series(op_mf.connections, none), (double)d->nconns);
    op_metrics_set(op_metrics_series(op_mf.generation, none), (double)d->current->number);
    op_metrics_set(op_metrics_series(op_mf.generation_loaded, none), d->gen_loaded);
    op_metrics_set(op_metrics_series(op_mf.lua_memory, none), (double)d->current->mem.total);
}

static void on_metrics_tick(uv_timer_t *t)
{
    (void)t;
    op_metrics_tick((double)time(NULL));
}

const op_session_ops_t *op_daemon_protocol(op_proto_t protocol)
{
    return protocol == OP_PROTO_MILTER ? &op_milter_session_ops : &op_policy_session_ops;
}

void op_daemon_conn_closed(op_daemon_t *d)
{
    finish_if_drained(d);
}

static void stop(op_daemon_t *d, int signum)
{
    if (d->stopping) {
        op_notice("signal %d again: answering what is in flight with the default action", signum);
        op_session_abort_all(d);
        return;
    }
    d->stopping = 1;
    double drain = d->current->cfg->drain_timeout;
    op_notice("signal %d: no new connections; draining %zu connections (at most %.3gs)", signum,
              d->nconns, drain);
    char st[128];
    op_notify_stopping(status_line(d, st, sizeof st));
    for (size_t i = 0; i < d->nlisteners; i++)
        op_listener_close(d->listeners[i]);
    d->drain_deadline = uv_now(d->loop) + (uint64_t)(drain * 1000.0);
    op_session_drain_all(d);
    finish_if_drained(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    op_daemon_t *d = s->data;
    if (signum == SIGHUP) {
        char err[2048];
        if (!d->stopping)
            reload(d, err, sizeof err);
        return;
    }
    stop(d, signum);
}

static void on_sweep(uv_timer_t *t)
{
    op_daemon_t *d = t->data;
    if (d->stopping && uv_now(d->loop) >= d->drain_deadline) {
        op_warn("drain_timeout passed with %zu connections open; answering what is in flight "
                "with the default action", d->nconns);
        op_session_abort_all(d);
    }
    const op_config_t *cfg = d->current->cfg;
    op_session_sweep(d, (uint64_t)(cfg->idle_timeout * 1000.0),
                     (uint64_t)(cfg->request_timeout * 1000.0));
    char st[128];
    op_notify_status(status_line(d, st, sizeof st));
    finish_if_drained(d);
}

typedef struct {
    uid_t uid;
    gid_t gid;
    int set;
} identity_t;

static int resolve_identity(const op_config_t *cfg, identity_t *id, char *err, size_t errlen)
{
    id->set = 0;
    if (cfg->user == NULL && cfg->group == NULL)
        return 0;
    id->uid = getuid();
    id->gid = getgid();
    if (cfg->user != NULL) {
        struct passwd *pw = getpwnam(cfg->user);
        if (pw == NULL) {
            snprintf(err, errlen, "%s: user %s does not exist", cfg->path, cfg->user);
            return -1;
        }
        id->uid = pw->pw_uid;
        id->gid = pw->pw_gid;
    }
    if (cfg->group != NULL) {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL) {
            snprintf(err, errlen, "%s: group %s does not exist", cfg->path, cfg->group);
            return -1;
        }
        id->gid = gr->gr_gid;
    }
    id->set = 1;
    return 0;
}

static int drop_privileges(const op_config_t *cfg, const identity_t *id, char *err, size_t errlen)
{
    if (!id->set || geteuid() != 0)
        return 0;
    /* The user's supplementary groups from the group database, so that a
     * group it is a member of (control { group }, a listener's
     * socket_group such as postfix) works as documented; without a user
     * (a group alone), none. */
    int groups_rc = cfg->user != NULL ? initgroups(cfg->user, id->gid) : setgroups(0, NULL);
    if (groups_rc != 0 || setgid(id->gid) != 0 || setuid(id->uid) != 0) {
        snprintf(err, errlen, "cannot become user %s: %s", cfg->user ? cfg->user : "?",
                 strerror(errno));
        return -1;
    }
    if (id->uid != 0 && setuid(0) == 0) {
        snprintf(err, errlen, "privileges were not dropped (setuid(0) succeeded)");
        return -1;
    }
    return 0;
}

static int open_listeners(op_daemon_t *d, const op_config_t *cfg, const identity_t *id, char *err,
                          size_t errlen)
{
    d->listeners = op_calloc(cfg->nlisteners, sizeof *d->listeners);
    for (size_t i = 0; i < cfg->nlisteners; i++) {
        const op_listener_conf_t *lc = &cfg->listeners[i];
        char lerr[512];
        op_listener_t *l = op_listener_open(d, lc, lerr, sizeof lerr);
        if (l == NULL) {
            snprintf(err, errlen, "%s:%d: listener %s: %s", lc->file, lc->line, lc->name, lerr);
            return -1;
        }
        d->listeners[d->nlisteners++] = l;
        /* A socket must belong to the user the daemon becomes unless the
         * config names another owner, or a reload could not replace it. */
        if (l->kind == OP_LISTEN_UNIX && id->set && geteuid() == 0 &&
            chown(l->path, lc->socket_owner ? (uid_t)-1 : id->uid,
                  lc->socket_group ? (gid_t)-1 : id->gid) != 0) {
            snprintf(err, errlen, "chown %s: %s", l->path, strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void announce(op_daemon_t *d)
{
    op_notice("outpostd %s ready: generation %llu, %zu services, pid %d", OP_VERSION,
              (unsigned long long)d->current->number, d->current->cfg->nservices, (int)getpid());
    for (size_t i = 0; i < d->nlisteners; i++) {
        op_listener_t *l = d->listeners[i];
        op_notice("listening on %s%s (listener %s: service %s%s%s)",
                  l->path ? "unix:" : "", l->path ? l->path : l->listen, l->name, l->service,
                  *l->tenant ? ", tenant " : "", l->tenant);
    }
    if (d->nlisteners > 0) {
        op_listener_t *l = d->listeners[0];
        char self[512] = "outpostd";
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n > 0)
            self[n] = '\0';
        op_notice("try: %s ask %s%s sasl_username=alice recipient=bob@example.org", self,
                  l->path ? "unix:" : "", l->path ? l->path : l->listen);
    }
}

int op_daemon_run(const char *config_path)
{
    char err[2048];
    static op_daemon_t d;
    d.loop = uv_default_loop();
    op_metrics_init();
    /* Absolute, so a reload finds the file whatever the working directory. */
    char *abs = realpath(config_path, NULL);
    d.config_path = abs != NULL ? abs : op_strdup(config_path);

    op_config_t *cfg = op_config_load(config_path, err, sizeof err);
    if (cfg == NULL)
        op_fatal("%s", err);
    op_log_config_apply(cfg);
    signal(SIGPIPE, SIG_IGN);
    raise_fd_limit(cfg);

    identity_t id = {0, 0, 0};
    if (resolve_identity(cfg, &id, err, sizeof err) != 0)
        op_fatal("%s", err);
    if (geteuid() == 0 && cfg->user == NULL)
        op_warn("RUNNING AS ROOT: %s sets no daemon { user }, so every policy, lookup and "
                "counter runs with root's privileges; set user = outpost (the package creates "
                "it) unless this is a test", cfg->path);
    fixed = op_fixed_save(cfg);
    mkdir_p(cfg->state_dir, 0750);
    if (id.set && geteuid() == 0 && chown(cfg->state_dir, id.uid, id.gid) != 0)
        op_fatal("chown %s: %s", cfg->state_dir, strerror(errno));
    if (open_listeners(&d, cfg, &id, err, sizeof err) != 0)
        op_fatal("%s", err);
    if (drop_privileges(cfg, &id, err, sizeof err) != 0)
        op_fatal("%s", err);
    if (op_services_start(d.loop, cfg, err, sizeof err) != 0)
        op_fatal("%s", err);

    d.current = op_gen_create(cfg, 1, &op_milter_gen_proto, err, sizeof err);
    if (d.current == NULL)
        op_fatal("%s", err);
    d.generations = 1;

    uv_signal_init(d.loop, &d.sighup);
    uv_signal_init(d.loop, &d.sigterm);
    uv_signal_init(d.loop, &d.sigint);
    d.sighup.data = d.sigterm.data = d.sigint.data = &d;
    uv_signal_start(&d.sighup, on_signal, SIGHUP);
    uv_signal_start(&d.sigterm, on_signal, SIGTERM);
    uv_signal_start(&d.sigint, on_signal, SIGINT);
    uv_timer_init(d.loop, &d.sweep);
    d.sweep.data = &d;
    uv_timer_start(&d.sweep, on_sweep, SWEEP_MS, SWEEP_MS);

    d.started = d.gen_loaded = (double)time(NULL);
    op_metrics_on_collect(collect_gauges, &d);
    uv_timer_init(d.loop, &d.metrics_tick);
    uv_timer_start(&d.metrics_tick, on_metrics_tick, 0, 10000);
    uv_unref((uv_handle_t *)&d.metrics_tick);
    op_control_set_hooks(&(op_control_hooks_t){control_reload, control_status, &d});
    op_explain_set_daemon(d.loop, current_generation, &d);
    if (op_watchdog_start() != 0)
        op_fatal("cannot start the CPU watchdog: %s", strerror(errno));
    announce(&d);
    uint64_t wd = op_notify_watchdog_start(d.loop);
    if (wd > 0)
        op_info("systemd watchdog: pinging every %.3gs (WatchdogSec=%.3gs)", (double)wd / 2e6,
                (double)wd / 1e6);
    char st[128];
    op_notify_ready(status_line(&d, st, sizeof st));
    uv_run(d.loop, UV_RUN_DEFAULT);
    op_watchdog_stop();
    op_control_set_hooks(NULL);
    op_explain_set_daemon(NULL, NULL, NULL);
    op_metrics_off_collect(collect_gauges, &d);

    op_gen_unref(d.current);
    op_services_stop();
    uv_run(d.loop, UV_RUN_DEFAULT); /* close callbacks of the services */
    free(d.listeners);
    free(d.config_path);
    op_fixed_free(fixed);
    fixed = NULL;
    int rc = uv_loop_close(d.loop);
    if (rc != 0)
        op_warn("event loop closed with handles still open: %s", uv_strerror(rc));
    op_notice("stopped");
    return 0;
}

int op_daemon_check(const char *config_path)
{
    char err[2048];
    op_log_set_level(OP_LOG_WARNING); /* the verdict is printed below */
    op_config_t *cfg = op_config_load(config_path, err, sizeof err);
    if (cfg == NULL) {
        fprintf(stderr, "outpostd: %s\n", err);
        return 1;
    }
    if (op_config_preflight(cfg, err, sizeof err) < 0) { /* what a start needs of the machine */
        fprintf(stderr, "outpostd: %s\n", err);
        op_config_free(cfg);
        return 1;
    }
    size_t nl = cfg->nlisteners, ns = cfg->nservices;
    op_gen_t *gen = op_gen_create(cfg, 1, &op_milter_gen_proto, err, sizeof err);
    if (gen == NULL) {
        fprintf(stderr, "outpostd: %s\n", err);
        return 1;
    }
    op_gen_unref(gen);
    printf("outpostd: %s: configuration, libraries and policies OK (%zu listeners, %zu services)\n",
           config_path, nl, ns);
    return 0;
}
