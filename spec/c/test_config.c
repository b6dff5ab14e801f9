/* outpost.conf: the parser alone, the schema (typed values, defaults,
 * relative paths) and one row per error with the FILE:LINE message it must
 * give; and docs/config.md must contain the generated reference verbatim. */
#include "config/conf_parse.h"
#include "config/config.h"
#include "config/config_schema.h"
#include "ctest.h"
#include "core/log.h"
#include "core/log_config.h"
#include <syslog.h>

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- helpers ---- */

static char tmpdir[PATH_MAX]; /* realpath of this test's directory */
static char conf[PATH_MAX + 32]; /* tmpdir/outpost.conf */

/* Writes text as outpost.conf in a fresh directory (once per test process). */
static const char *write_conf(const char *text)
{
    if (tmpdir[0] == '\0') {
        char tmpl[] = "/tmp/outpost-test-XXXXXX";
        if (mkdtemp(tmpl) == NULL || realpath(tmpl, tmpdir) == NULL) {
            perror("mkdtemp");
            exit(2);
        }
        snprintf(conf, sizeof conf, "%s/outpost.conf", tmpdir);
    }
    FILE *f = fopen(conf, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(conf);
        exit(2);
    }
    return conf;
}

static void cleanup(void)
{
    if (tmpdir[0] != '\0') {
        unlink(conf);
        rmdir(tmpdir);
    }
}

static op_config_t *load_ok(const char *text)
{
    char err[512] = "";
    op_config_t *cfg = op_config_load(write_conf(text), err, sizeof err);
    if (cfg == NULL)
        fprintf(stderr, "  unexpected error: %s\n", err);
    return cfg;
}

/* tmpdir + suffix, or tmpdir's parent + suffix when up is set. */
static const char *in_dir(const char *suffix, int up)
{
    static char buf[4][PATH_MAX];
    static int next;
    char *b = buf[next++ % 4];
    size_t n = strlen(tmpdir);
    if (up)
        n = (size_t)(strrchr(tmpdir, '/') - tmpdir);
    snprintf(b, PATH_MAX, "%.*s%s", (int)n, tmpdir, suffix);
    return b;
}

#define LISTENER "listener a {\n  listen = unix:a.sock\n  service = s\n}\n" /* 4 lines */
#define SERVICE "service s { }\n"                                           /* 1 line */

/* ---- the parser alone ---- */

static op_conf_node_t *parse(const char *text, char *err, size_t errlen)
{
    return op_conf_parse("t.conf", text, strlen(text), err, errlen);
}

CTEST(parse_comments_separators_and_blocks)
{
    char err[256] = "";
    op_conf_node_t *r = parse("# leading comment\n"
                              "a = 1; b = two # trailing comment\n"
                              "c { d = \"x # not a comment\"; e = y }\n"
                              "listener postout {\n"
                              "  listen = tcp:[::1]:10040\n"
                              "}\n",
                              err, sizeof err);
    CHECK(r != NULL);
    if (r == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    CHECK_INT(r->kind, OP_CONF_BLOCK);
    CHECK_INT(r->nchildren, 4);
    CHECK_STR(r->children[0].key, "a");
    CHECK_STR(r->children[0].value, "1");
    CHECK_INT(r->children[0].line, 2);
    CHECK_STR(r->children[1].value, "two");
    CHECK_INT(r->children[1].quoted, 0);
    op_conf_node_t *c = &r->children[2];
    CHECK_INT(c->kind, OP_CONF_BLOCK);
    CHECK(c->name == NULL);
    CHECK_INT(c->nchildren, 2);
    CHECK_STR(c->children[0].value, "x # not a comment");
    CHECK_INT(c->children[0].quoted, 1);
    CHECK_STR(c->children[1].value, "y");
    op_conf_node_t *l = &r->children[3];
    CHECK_STR(l->key, "listener");
    CHECK_STR(l->name, "postout");
    CHECK_INT(l->line, 4);
    CHECK_STR(l->children[0].value, "tcp:[::1]:10040");
    CHECK_INT(l->children[0].line, 5);
    CHECK_STR(l->children[0].file, "t.conf");
    op_conf_free(r);
}

CTEST(parse_quoted_escapes)
{
    char err[256] = "";
    op_conf_node_t *r = parse("s = \"a\\\"b\\\\c\\nd\\te\"\nempty = \"\"\n", err, sizeof err);
    CHECK(r != NULL);
    if (r == NULL)
        return;
    CHECK_STR(r->children[0].value, "a\"b\\c\nd\te");
    CHECK_INT(r->children[0].quoted, 1);
    CHECK_STR(r->children[1].value, "");
    op_conf_free(r);
}

CTEST(parse_lists)
{
    char err[256] = "";
    op_conf_node_t *r = parse("l = [\n"
                              "  a,      # first\n"
                              "  \"b c\",\n"
                              "]\n"
                              "one = [x, y]; none = []\n"
                              "bare = [ tcp:[::1]:1 , z ]\n",
                              err, sizeof err);
    CHECK(r != NULL);
    if (r == NULL) {
        fprintf(stderr, "  %s\n", err);
        return;
    }
    op_conf_node_t *l = &r->children[0];
    CHECK_INT(l->kind, OP_CONF_LIST);
    CHECK_INT(l->line, 1);
    CHECK_INT(l->nchildren, 2);
    CHECK_STR(l->children[0].value, "a");
    CHECK(l->children[0].key == NULL);
    CHECK_INT(l->children[0].line, 2);
    CHECK_STR(l->children[1].value, "b c");
    CHECK_INT(l->children[1].line, 3);
    CHECK_INT(r->children[1].nchildren, 2);
    CHECK_STR(r->children[1].children[1].value, "y");
    CHECK_INT(r->children[2].kind, OP_CONF_LIST);
    CHECK_INT(r->children[2].nchildren, 0);
    CHECK_STR(r->children[3].children[0].value, "tcp:[::1]:1");
    CHECK_STR(r->children[3].children[1].value, "z");
    op_conf_free(r);
}

static char *nested(int depth)
{
    char *s = malloc((size_t)depth * 8 + 1), *p = s;
    for (int i = 0; i < depth; i++)
        p += sprintf(p, "b {\n");
    for (int i = 0; i < depth; i++)
        p += sprintf(p, "}\n");
    return s;
}

CTEST(parse_equals_inside_lists)
{
    char err[256];
    op_conf_node_t *r = parse("checks = [MO3=log-only, \"PO8=off\"]\nx = y\n", err, sizeof err);
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK_INT(r->nchildren, 2);
        CHECK_STR(r->children[0].children[0].value, "MO3=log-only");
        CHECK_STR(r->children[0].children[1].value, "PO8=off");
        CHECK_STR(r->children[1].value, "y"); /* outside the list '=' separates again */
        op_conf_free(r);
    }
    CHECK(parse("checks = [=x]\n", err, sizeof err) == NULL);
}

CTEST(parse_nesting_limit)
{
    char err[256] = "";
    char *ok = nested(16), *deep = nested(17);
    op_conf_node_t *r = parse(ok, err, sizeof err);
    CHECK(r != NULL);
    op_conf_free(r);
    CHECK(parse(deep, err, sizeof err) == NULL);
    CHECK(strstr(err, "t.conf:17: blocks nested more than 16 deep") != NULL);
    free(ok);
    free(deep);
}

CTEST(parse_size_limit_and_nul)
{
    char err[256] = "";
    size_t big = 1024 * 1024 + 1;
    char *text = malloc(big);
    memset(text, '\n', big);
    CHECK(op_conf_parse("t.conf", text, big, err, sizeof err) == NULL);
    CHECK(strstr(err, "t.conf: file is larger than 1 MiB") != NULL);
    op_conf_node_t *r = op_conf_parse("t.conf", text, big - 1, err, sizeof err);
    CHECK(r != NULL);
    op_conf_free(r);

    FILE *f = fopen(write_conf(""), "w");
    fwrite(text, 1, big, f);
    fclose(f);
    CHECK(op_conf_parse_file(conf, err, sizeof err) == NULL);
    CHECK(strstr(err, "outpost.conf: file is larger than 1 MiB") != NULL);
    free(text);

    CHECK(op_conf_parse("t.conf", "a = b\nc = d\0e\n", 13, err, sizeof err) == NULL);
    CHECK(strstr(err, "t.conf:2: NUL byte") != NULL);
    cleanup();
}

CTEST(parse_file_missing)
{
    char err[256] = "";
    CHECK(op_conf_parse_file("/nonexistent/outpost.conf", err, sizeof err) == NULL);
    CHECK_STR(err, "/nonexistent/outpost.conf: cannot open: No such file or directory");
    CHECK(op_config_load("/nonexistent/outpost.conf", err, sizeof err) == NULL);
    CHECK(strstr(err, "/nonexistent/outpost.conf: cannot open") != NULL);
}

/* ---- valid configurations ---- */

CTEST(config_defaults)
{
    op_config_t *cfg = load_ok(LISTENER SERVICE);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return cleanup();
    CHECK_STR(cfg->path, in_dir("/outpost.conf", 0));
    CHECK_STR(cfg->dir, tmpdir);
    CHECK(cfg->user == NULL);
    CHECK(cfg->group == NULL);
    CHECK_STR(cfg->state_dir, "/var/lib/outpost");
    CHECK_STR(cfg->lua_dir, "/usr/share/outpost/lua");
    CHECK(cfg->drain_timeout == 10.0);
    CHECK_INT(cfg->log_level, OP_LOG_INFO);
    CHECK_INT(cfg->log_decisions, 1);
    CHECK_INT(cfg->max_connections, 1024);
    CHECK(cfg->idle_timeout == 600.0);
    CHECK_INT(cfg->max_line, 4096);
    CHECK_INT(cfg->max_attrs, 128);
    CHECK_INT(cfg->max_request, 65536);

    CHECK_INT(cfg->nlisteners, 1);
    const op_listener_conf_t *l = &cfg->listeners[0];
    CHECK_STR(l->name, "a");
    CHECK_INT(l->line, 1);
    CHECK_INT(l->kind, OP_LISTEN_UNIX);
    CHECK_STR(l->listen, "unix:a.sock");
    CHECK_STR(l->path, in_dir("/a.sock", 0));
    CHECK(l->host == NULL);
    CHECK_INT(l->protocol, OP_PROTO_POLICY);
    CHECK_STR(l->service, "s");
    CHECK_STR(l->tenant, "");
    CHECK_INT(l->nallow_context, 0);
    CHECK_INT(l->socket_mode, 0660);
    CHECK(l->socket_owner == NULL);
    CHECK(l->socket_group == NULL);

    CHECK_INT(cfg->nservices, 1);
    const op_service_conf_t *s = &cfg->services[0];
    CHECK_STR(s->name, "s");
    CHECK_INT(s->line, 5);
    CHECK_STR(s->policy, "/usr/share/outpost/lua/policies/s.lua");
    CHECK(s->deadline == 10.0);
    CHECK_STR(s->default_action, "451 4.3.5 policy service unavailable, try again later");
    CHECK_STR(s->header_overflow_action, "552 5.3.4 message header too large to check");
    CHECK(cfg->root != NULL && cfg->root->nchildren == 2);
    op_config_free(cfg);
    cleanup();
}

static const char full_conf[] =
    "# every key, sections in an unusual order\n"
    "listener postout {\n"
    "  listen = \"unix:run/postout.sock\"\n"
    "  service = outbound\n"
    "  tenant = acme\n"
    "  allow_context = [\n"
    "    submission,\n"
    "    inbound,    # trailing comma\n"
    "  ]\n"
    "  socket_mode = 0600\n"
    "  socket_owner = postfix; socket_group = postfix\n"
    "}\n"
    "listener inet6 {\n"
    "  listen = tcp:[::1]:10040\n"
    "  protocol = policy\n"
    "  service = inbound\n"
    "}\n"
    "listener inet4 { listen = tcp:127.0.0.1:10041; service = submission }\n"
    "service outbound {\n"
    "  deadline = 2.5s\n"
    "  default_action = \"DEFER_IF_PERMIT 4.3.5 try later\"\n"
    "}\n"
    "service inbound { policy = greylist }\n"
    "service submission { policy = ./policies/sub.lua; deadline = 90s }\n"
    "request_limits { max_line = 8k; max_attrs = 64; max_request = 1M }\n"
    "daemon {\n"
    "  user = outpost\n"
    "  group = postfix\n"
    "  state_dir = state/\n"
    "  lua_dir = ../lua\n"
    "  drain_timeout = 1500ms\n"
    "  log_level = debug\n"
    "  log_decisions = off\n"
    "  max_connections = 2k\n"
    "  idle_timeout = 1h\n"
    "}\n";

CTEST(config_typed_values)
{
    op_config_t *cfg = load_ok(full_conf);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return cleanup();
    CHECK_STR(cfg->user, "outpost");
    CHECK_STR(cfg->group, "postfix");
    CHECK_STR(cfg->state_dir, in_dir("/state", 0));
    CHECK_STR(cfg->lua_dir, in_dir("/lua", 1));
    CHECK(cfg->drain_timeout == 1.5);
    CHECK_INT(cfg->log_level, OP_LOG_DEBUG);
    CHECK_INT(cfg->log_decisions, 0);
    CHECK_INT(cfg->max_connections, 2048);
    CHECK(cfg->idle_timeout == 3600.0);
    CHECK_INT(cfg->max_line, 8192);
    CHECK_INT(cfg->max_attrs, 64);
    CHECK_INT(cfg->max_request, 1048576);

    CHECK_INT(cfg->nlisteners, 3);
    const op_listener_conf_t *l = &cfg->listeners[0];
    CHECK_STR(l->name, "postout");
    CHECK_INT(l->line, 2);
    CHECK_INT(l->kind, OP_LISTEN_UNIX);
    CHECK_STR(l->path, in_dir("/run/postout.sock", 0));
    CHECK_STR(l->service, "outbound");
    CHECK_STR(l->tenant, "acme");
    CHECK_INT(l->nallow_context, 2);
    if (l->nallow_context == 2) {
        CHECK_STR(l->allow_context[0], "submission");
        CHECK_STR(l->allow_context[1], "inbound");
    }
    CHECK_INT(l->socket_mode, 0600);
    CHECK_STR(l->socket_owner, "postfix");
    CHECK_STR(l->socket_group, "postfix");
    l = &cfg->listeners[1];
    CHECK_INT(l->kind, OP_LISTEN_TCP);
    CHECK_STR(l->listen, "tcp:[::1]:10040");
    CHECK_STR(l->host, "::1");
    CHECK_INT(l->port, 10040);
    CHECK(l->path == NULL);
    CHECK_INT(l->protocol, OP_PROTO_POLICY);
    l = &cfg->listeners[2];
    CHECK_STR(l->host, "127.0.0.1");
    CHECK_INT(l->port, 10041);
    CHECK_STR(l->service, "submission");

    CHECK_INT(cfg->nservices, 3);
    const op_service_conf_t *s = op_config_service(cfg, "outbound");
    CHECK(s == &cfg->services[0]);
    CHECK_STR(s->policy, in_dir("/lua/policies/outbound.lua", 1)); /* lua_dir set after it */
    CHECK(s->deadline == 2.5);
    CHECK_STR(s->default_action, "DEFER_IF_PERMIT 4.3.5 try later");
    s = op_config_service(cfg, "inbound");
    CHECK(s == &cfg->services[1]);
    CHECK_STR(s->policy, in_dir("/lua/policies/greylist.lua", 1));
    s = op_config_service(cfg, "submission");
    CHECK_STR(s->policy, in_dir("/policies/sub.lua", 0));
    CHECK(s->deadline == 90.0);
    CHECK(op_config_service(cfg, "nope") == NULL);
    CHECK_INT(cfg->root->nchildren, 8);
    op_config_free(cfg);
    cleanup();
}

/* One value in an otherwise minimal config, and what it must become. */
static const struct value_case {
    const char *snippet; /* a whole section */
    int field;
    double want;
} value_cases[] = {
    {"daemon { drain_timeout = 10 }", 0, 10},
    {"daemon { drain_timeout = 0 }", 0, 0},
    {"daemon { drain_timeout = 250ms }", 0, 0.25},
    {"daemon { drain_timeout = 2m }", 0, 120},
    {"daemon { drain_timeout = 1d }", 0, 86400},
    {"daemon { drain_timeout = \"30s\" }", 0, 30},
    {"service s2 { deadline = 0.5 }", 1, 0.5},
    {"request_limits { max_line = 512 }", 2, 512},
    {"request_limits { max_line = 4K }", 2, 4096},
    {"request_limits { max_line = 2M }", 2, 2097152},
    {"daemon { log_decisions = yes }", 3, 1},
    {"daemon { log_decisions = true }", 3, 1},
    {"daemon { log_decisions = on }", 3, 1},
    {"daemon { log_decisions = no }", 3, 0},
    {"daemon { log_decisions = false }", 3, 0},
    {"daemon { log_decisions = off }", 3, 0},
    {"daemon { log_level = warning }", 4, OP_LOG_WARNING},
    {"daemon { log_level = error }", 4, OP_LOG_ERR},
    {"daemon { log_level = notice }", 4, OP_LOG_NOTICE},
    {"daemon { lua_jit = lib }", 6, OP_LUA_JIT_LIB},
    {"daemon { lua_jit = no }", 6, OP_LUA_JIT_NO},
    {"daemon { lua_jit = yes }", 6, OP_LUA_JIT_YES},
    {"daemon { lua_jit = true }", 6, OP_LUA_JIT_YES}, /* a bool before issue 20 */
    {"daemon { lua_jit = on }", 6, OP_LUA_JIT_YES},
    {"daemon { lua_jit = false }", 6, OP_LUA_JIT_NO},
    {"daemon { lua_jit = off }", 6, OP_LUA_JIT_NO},
    {"listener u { listen = unix:u; service = s; socket_mode = 0666 }", 5, 0666},
    {"listener u { listen = unix:u; service = s; socket_mode = 2770 }", 5, 02770},
};

CTEST(config_value_table)
{
    for (size_t i = 0; i < sizeof value_cases / sizeof value_cases[0]; i++) {
        const struct value_case *vc = &value_cases[i];
        char text[512];
        snprintf(text, sizeof text, LISTENER SERVICE "%s\n", vc->snippet);
        op_config_t *cfg = load_ok(text);
        if (cfg == NULL) {
            fprintf(stderr, "  row %zu: %s\n", i, vc->snippet);
            CHECK(cfg != NULL);
            continue;
        }
        double got = vc->field == 0   ? cfg->drain_timeout
                     : vc->field == 1 ? op_config_service(cfg, "s2")->deadline
                     : vc->field == 2 ? (double)cfg->max_line
                     : vc->field == 3 ? cfg->log_decisions
                     : vc->field == 4 ? cfg->log_level
                     : vc->field == 6 ? cfg->lua_jit
                                      : cfg->listeners[1].socket_mode;
        if (got != vc->want) {
            fprintf(stderr, "  row %zu: %s: got %g, want %g\n", i, vc->snippet, got, vc->want);
            ctest_failed_here = 1;
        }
        op_config_free(cfg);
    }
    cleanup();
}

CTEST(config_paths)
{
    op_config_t *cfg = load_ok("daemon { state_dir = ./a//b/./c; lua_dir = ../../x }\n"
                               "listener a { listen = unix:/run/outpost/p.sock; service = s }\n"
                               "listener b { listen = unix:../b.sock; service = s }\n"
                               "service s { policy = sub/../p.lua }\n");
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return cleanup();
    CHECK_STR(cfg->state_dir, in_dir("/a/b/c", 0));
    CHECK(strncmp(cfg->lua_dir, "/", 1) == 0 && strstr(cfg->lua_dir, "..") == NULL);
    CHECK_STR(cfg->listeners[0].path, "/run/outpost/p.sock"); /* absolute: kept */
    CHECK_STR(cfg->listeners[1].path, in_dir("/b.sock", 1));
    /* "sub" may be a symlink, so its ".." is left to the kernel. */
    CHECK_STR(cfg->services[0].policy, in_dir("/sub/../p.lua", 0));
    op_config_free(cfg);
    cleanup();
}

/* log { }: its keys, its defaults, and log { level } over daemon { log_level }. */
CTEST(config_log_section)
{
    op_config_t *cfg = load_ok(LISTENER SERVICE);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return cleanup();
    const op_log_conf_t *lc = op_log_config(cfg);
    CHECK_INT(lc->target, OP_LOG_TO_STDERR);
    CHECK_INT(lc->format, OP_LOG_TEXT);
    CHECK_INT(lc->level, 0); /* daemon { log_level } applies */
    CHECK_INT(lc->facility, LOG_MAIL);
    CHECK_STR(lc->ident, "outpostd");
    CHECK(lc->socket == NULL);
    op_config_free(cfg);
    cfg = load_ok("daemon {\n  log_level = warning\n}\nlog {\n  target = syslog\n  format = json\n"
                  "  level = debug\n  facility = local3\n  ident = op-test\n  socket = log.sock\n}\n"
                  LISTENER SERVICE);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return cleanup();
    lc = op_log_config(cfg);
    CHECK_INT(lc->target, OP_LOG_TO_SYSLOG);
    CHECK_INT(lc->format, OP_LOG_JSON);
    CHECK_INT(lc->level, OP_LOG_DEBUG);
    CHECK_INT(cfg->log_level, OP_LOG_WARNING);
    CHECK_INT(lc->facility, LOG_LOCAL3);
    CHECK_STR(lc->ident, "op-test");
    CHECK_STR(lc->socket, in_dir("/log.sock", 0));
    op_config_free(cfg);
    cfg = load_ok("log {\n  target = journal\n}\n" LISTENER SERVICE);
    CHECK(cfg != NULL && op_log_config(cfg)->target == OP_LOG_TO_JOURNAL);
    op_config_free(cfg);
    cleanup();
}

/* ---- errors: each with the FILE:LINE message it must give ---- */

static const struct error_case {
    const char *name;
    const char *text;
    const char *want;   /* substring of the message, after "outpost.conf:" */
    const char *absent; /* must not appear, or NULL */
} error_cases[] = {
    {"unknown key, near miss", "listener a {\n  lisen = unix:a.sock\n  service = s\n}\n" SERVICE,
     "2: listener 'a': unknown key 'lisen' (did you mean 'listen'?)", NULL},
    {"unknown key, far off", "daemon {\n  colour = blue\n}\n" LISTENER SERVICE,
     "2: daemon: unknown key 'colour'", "did you mean"},
    {"unknown section, near miss", SERVICE "listner b {\n}\n",
     "2: unknown section 'listner' (did you mean 'listener'?)", NULL},
    {"unknown section", "frobnicate {\n}\n",
     "1: unknown section 'frobnicate' (sections: daemon, log, request_limits, listener, service, dns, smtp_verify, counters, limit, redis, control, metrics, ldap, directory, clamd, rspamd)", NULL},
    {"log target unknown", "log {\n  target = file\n}\n" LISTENER SERVICE,
     "2: log: target: unknown value 'file' (allowed: stderr, syslog, journal)", NULL},
    {"log facility unknown", "log {\n  facility = local9\n}\n" LISTENER SERVICE,
     "2: log: facility: unknown value 'local9'", NULL},
    {"log socket too long", "log {\n  socket = /" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "\n}\n" LISTENER SERVICE,
     "2: log: socket: '/aaaa", NULL},
    {"dns server not an address", LISTENER SERVICE "dns {\n  servers = [127.0.0.1:53, ns.example.org]\n}\n",
     "7: dns: servers: 'ns.example.org' is not IP, IP:PORT or [IPV6]:PORT", NULL},
    {"dns server port out of range", LISTENER SERVICE "dns {\n  servers = [\"[::1]:70000\"]\n}\n",
     "7: dns: servers: '[::1]:70000' is not", NULL},
    {"limit without max", LISTENER SERVICE "limit l {\n  window = 1h\n}\n",
     "6: limit 'l': missing required key 'max'", NULL},
    {"limit resolution not dividing window", LISTENER SERVICE
     "limit l {\n  max = 5\n  window = 1h\n  resolution = 7m\n}\n",
     "9: limit 'l': resolution 420s must divide window 3600s", NULL},
    {"limit with too many buckets", LISTENER SERVICE "limit l {\n  max = 5\n  resolution = 1s\n}\n",
     "8: limit 'l': window 86400s / resolution 1s gives 86400 buckets; at most 10000", NULL},
    {"limit max_override below max", LISTENER SERVICE "limit l {\n  max = 5\n  max_override = 4\n}\n",
     "8: limit 'l': max_override 4 is below max 5", NULL},
    {"duplicate key", "daemon {\n  user = a\n  user = b\n}\n",
     "3: daemon: duplicate key 'user' (first given at line 2)", NULL},
    {"duplicate section", "daemon {\n}\nrequest_limits { }\ndaemon {\n}\n",
     "4: section 'daemon' given twice (first at line 1)", NULL},
    {"duplicate listener name", LISTENER "listener a {\n  listen = unix:b.sock\n  service = s\n}\n" SERVICE,
     "5: listener 'a' defined twice (first at line 1)", NULL},
    {"duplicate service name", LISTENER SERVICE SERVICE, "6: service 's' defined twice (first at line 5)", NULL},
    {"duplicate unix address", LISTENER "listener b {\n  listen = unix:./a.sock\n  service = s\n}\n" SERVICE,
     "6: listener 'b': listen address unix:./a.sock is already used by listener 'a' (line 2)", NULL},
    {"duplicate tcp address",
     "listener a { listen = tcp:[::1]:25; service = s }\n"
     "listener b { listen = tcp:[0::1]:25; service = s }\n" SERVICE,
     "2: listener 'b': listen address tcp:[0::1]:25 is already used by listener 'a' (line 1)", NULL},
    {"undefined service", "listener a {\n  listen = unix:a.sock\n  service = nope\n}\n" SERVICE,
     "3: listener 'a': service 'nope' is not defined", "did you mean"},
    {"undefined service, near miss", "service inbound { }\nlistener a {\n  listen = unix:a\n  service = inbund\n}\n",
     "4: listener 'a': service 'inbund' is not defined (did you mean 'inbound'?)", NULL},
    {"undefined allow_context",
     "listener a {\n  listen = unix:a.sock\n  service = s\n  allow_context = [s,\n    postout]\n}\n" SERVICE,
     "5: listener 'a': service 'postout' is not defined", NULL},
    {"allow_context SERVICE:TENANT of an undefined service",
     "listener a {\n  listen = unix:a.sock\n  service = s\n  allow_context = [s,\n    \"appout:lm\"]\n}\n" SERVICE,
     "5: listener 'a': service 'appout' is not defined", NULL},
    {"allow_context with an empty tenant",
     "listener a {\n  listen = unix:a.sock\n  service = s\n  allow_context = [\"s:\"]\n}\n" SERVICE,
     "4: listener 'a': allow_context: bad entry 's:' (SERVICE or SERVICE:TENANT", NULL},
    {"allow_context with two colons",
     "listener a {\n  listen = unix:a.sock\n  service = s\n  allow_context = [\"s:lm:x\"]\n}\n" SERVICE,
     "4: listener 'a': allow_context: bad entry 's:lm:x'", NULL},
    {"unknown_context_action not access(5)",
     "listener a {\n  listen = unix:a.sock\n  service = s\n  unknown_context_action = \"Later please\"\n}\n" SERVICE,
     "4: listener 'a': unknown_context_action: 'Later' is not a Postfix access(5) action", NULL},
    {"allow_context twice", "listener a {\n  listen = unix:a\n  service = s\n  allow_context = [s, s]\n}\n" SERVICE,
     "4: listener 'a': allow_context: 's' is listed twice", NULL},
    {"tcp without port", "listener a {\n  listen = tcp:127.0.0.1\n  service = s\n}\n" SERVICE,
     "2: listener 'a': listen 'tcp:127.0.0.1': missing port", NULL},
    {"tcp port 70000", "listener a {\n  listen = tcp:127.0.0.1:70000\n  service = s\n}\n" SERVICE,
     "2: listener 'a': listen 'tcp:127.0.0.1:70000': bad port '70000' (1-65535)", NULL},
    {"tcp port 0", "listener a {\n  listen = tcp:[::]:0\n  service = s\n}\n" SERVICE, "2: listener 'a': listen 'tcp:[::]:0': bad port '0'", NULL},
    {"tcp host name", "listener a {\n  listen = tcp:localhost:10040\n  service = s\n}\n" SERVICE,
     "2: listener 'a': listen 'tcp:localhost:10040': 'localhost' is not an IPv4 address", NULL},
    {"tcp IPv6 without brackets", "listener a {\n  listen = tcp:::1:10040\n  service = s\n}\n" SERVICE,
     "2: listener 'a': listen 'tcp:::1:10040': an IPv6 address needs brackets", NULL},
    {"tcp IPv6 without port", "listener a {\n  listen = tcp:[::1]\n  service = s\n}\n" SERVICE,
     "2: listener 'a': listen 'tcp:[::1]': missing port", NULL},
    {"unix without path", "listener a {\n  listen = unix:\n  service = s\n}\n" SERVICE,
     "2: listener 'a': listen 'unix:': missing socket path", NULL},
    {"Postfix inet: form", "listener a {\n  listen = inet:127.0.0.1:1\n  service = s\n}\n" SERVICE,
     "2: listener 'a': listen 'inet:127.0.0.1:1': expected unix:PATH, tcp:IPV4:PORT or tcp:[IPV6]:PORT "
     "(Postfix's inet: is tcp: here)", NULL},
    {"socket_mode on tcp", "listener a {\n  listen = tcp:127.0.0.1:10040\n  service = s\n  socket_mode = 0600\n}\n" SERVICE,
     "4: listener 'a': socket_mode applies only to unix: listeners, not to tcp:127.0.0.1:10040", NULL},
    {"socket_group on tcp", "listener a {\n  listen = tcp:127.0.0.1:1\n  socket_group = postfix\n  service = s\n}\n" SERVICE,
     "3: listener 'a': socket_group applies only to unix: listeners", NULL},
    {"allow_from on unix", "listener a {\n  listen = unix:a\n  service = s\n  allow_from = [\"10.0.0.0/8\"]\n}\n" SERVICE,
     "4: listener 'a': allow_from applies only to tcp: listeners, not to unix:a", NULL},
    {"max_per_peer on unix", "listener a {\n  listen = unix:a\n  service = s\n  max_per_peer = 4\n}\n" SERVICE,
     "4: listener 'a': max_per_peer applies only to tcp: listeners", NULL},
    {"bad allow_from", "listener a {\n  listen = tcp:127.0.0.1:10040\n  service = s\n  allow_from = [\"10.1.2.3/8\"]\n}\n" SERVICE,
     "4: listener 'a': allow_from: '10.1.2.3/8' has host bits set", NULL},
    {"bad mode", "listener a {\n  listen = unix:a\n  service = s\n  socket_mode = 0990\n}\n" SERVICE,
     "4: listener 'a': socket_mode: bad mode '0990' (octal permission bits, e.g. 0660)", NULL},
    {"deadline 0", LISTENER "service s {\n  deadline = 0\n}\n",
     "6: service 's': deadline 0 is out of range: it must be more than 0s and at most 90s", NULL},
    {"deadline 120s", LISTENER "service s {\n  deadline = 120s\n}\n",
     "6: service 's': deadline 120s is out of range", NULL},
    {"bad duration unit", "daemon {\n  drain_timeout = 10x\n}\n",
     "2: daemon: drain_timeout: bad duration '10x' (a number with an optional unit ms, s, m, h or d", NULL},
    {"bad duration number", "daemon {\n  idle_timeout = 1.s\n}\n", "2: daemon: idle_timeout: bad duration '1.s'", NULL},
    {"bad bool", "daemon {\n  log_decisions = maybe\n}\n",
     "2: daemon: log_decisions: bad boolean 'maybe' (use yes or no", NULL},
    {"bad enum", "daemon {\n  log_level = verbose\n}\n",
     "2: daemon: log_level: unknown value 'verbose' (allowed: debug, info, notice, warning, error)", NULL},
    {"bad integer", "request_limits {\n  max_line = 4x\n}\n", "2: request_limits: max_line: bad integer '4x'", NULL},
    {"integer 0", "daemon {\n  max_connections = 0\n}\n",
     "2: daemon: max_connections 0 is out of range: it must be at least 1", NULL},
    {"scalar for a list", "listener a {\n  listen = unix:a\n  service = s\n  allow_context = s\n}\n" SERVICE,
     "4: listener 'a': allow_context must be a list, e.g. allow_context = [a, b]", NULL},
    {"list for a scalar", "listener a {\n  listen = unix:a\n  service = [s]\n}\n" SERVICE,
     "3: listener 'a': service takes one value, not a list", NULL},
    {"block for a scalar", "daemon {\n  user {\n  }\n}\n", "2: daemon: user takes a value (user = VALUE), not a block", NULL},
    {"scalar for a section", "daemon = yes\n", "1: daemon is a section: write daemon { ... }", NULL},
    {"listener without name", "listener {\n}\n", "1: listener needs a name: listener NAME { ... }", NULL},
    {"daemon with a name", "daemon main {\n}\n", "1: daemon takes no name", NULL},
    {"bad listener name", "listener \"a b\" {\n}\n", "1: bad listener name 'a b'", NULL},
    {"missing listen", "listener a {\n  service = s\n}\n" SERVICE, "1: listener 'a': missing required key 'listen'", NULL},
    {"empty path", "daemon {\n  state_dir = \"\"\n}\n", "2: daemon: state_dir must not be empty", NULL},
    {"policy file name without /", LISTENER "service s {\n  policy = s.lua\n}\n",
     "6: service 's': policy 's.lua': a value without '/' is a policy name", NULL},
    {"action not access(5)", LISTENER "service s {\n  default_action = \"DEFFER 4.3.5 later\"\n}\n",
     "6: service 's': default_action: 'DEFFER' is not a Postfix access(5) action", NULL},
    {"action 2xx", LISTENER "service s { default_action = \"250 fine\" }\n",
     "5: service 's': default_action: '250' is not a Postfix access(5) action", NULL},
    {"action with LF", LISTENER "service s {\n  default_action = \"451 4.3.5 a\\nb\"\n}\n",
     "6: service 's': default_action must be one line", NULL},
    {"overflow action that lets mail through",
     LISTENER "service s {\n  header_overflow_action = DUNNO\n}\n",
     "6: service 's': header_overflow_action: 'DUNNO' must refuse the message", NULL},
    {"overflow action OK", LISTENER "service s { header_overflow_action = \"OK fine\" }\n",
     "5: service 's': header_overflow_action: 'OK fine' must refuse the message", NULL},
    {"action empty", LISTENER "service s {\n  default_action = \"\"\n}\n",
     "6: service 's': default_action must not be empty", NULL},
    {"no listener: empty file", "", "1: no listener defined", NULL},
    {"no listener: comments only", "# nothing here\n\n", "1: no listener defined", NULL},
    {"no service", LISTENER, "1: no service defined", NULL},
    {"unterminated string", "daemon {\n  user = \"outpost\n}\n", "2: unterminated string", NULL},
    {"bad escape", "daemon {\n  user = \"a\\qb\"\n}\n", "2: bad escape '\\q' in string", NULL},
    {"unclosed block", LISTENER "service s {\n  deadline = 5s\n\n",
     "5: block 'service s' opened here is not closed", NULL},
    {"unexpected }", SERVICE "}\n", "2: unexpected '}': no block is open", NULL},
    {"list not closed", "listener a {\n  listen = unix:a.sock\n  allow_context = [s, t\n  service = s\n}\n",
     "4: list opened at line 3 is not closed: expected ',' or ']' before 'service'", NULL},
    {"list not closed at end of file", "x = [a,\n", "2: list opened at line 1 is not closed", NULL},
    {"nested list", "x = [a, [b]]\n", "1: lists cannot be nested", NULL},
    {"empty list element", "x = [a,, b]\n", "1: empty element in list", NULL},
    {"key without = or {", "daemon {\n  user\n}\n", "2: expected '=' or '{' after 'user'", NULL},
    {"value with a space", "daemon {\n  user = out post\n}\n",
     "2: expected end of line or ';' after the value of 'user', found 'post'", NULL},
    {"missing value", "daemon {\n  user =\n}\n", "2: expected a value after 'user =', found end of line", NULL},
    {"unexpected character", "daemon {\n  user = $x\n}\n", "2: unexpected character '$'", NULL},
    {"ldap URI scheme", LISTENER SERVICE "ldap {\n  uris = [ldap://127.0.0.1:389/,\n    \"http://ldap.example.org/\"]\n}\n",
     "8: ldap: uris: 'http://ldap.example.org/': unsupported scheme 'http' (ldap://, ldaps:// or ldapi://)", NULL},
    {"ldap URI malformed", LISTENER SERVICE "ldap {\n  uris = [\"ldap://127.0.0.1:port/\"]\n}\n",
     "7: ldap: uris: 'ldap://127.0.0.1:port/' is not an LDAP URI", NULL},
    /* filter templates (directory { }): each caught at its own line */
    {"filter unbalanced (", LISTENER SERVICE "directory {\n  base = \"dc=x\"\n  user_filter = \"(&(objectClass=person)(uid=%s)\"\n}\n",
     "8: directory: user_filter: unbalanced '(': missing ')'", NULL},
    {"filter unbalanced )", LISTENER SERVICE "directory {\n  address_filter = \"(mail=%1))\"\n}\n",
     "7: directory: address_filter: text after the filter's closing ')'", NULL},
    {"filter unknown placeholder", LISTENER SERVICE "directory {\n  user_filter = \"(uid=%u)\"\n}\n",
     "7: directory: user_filter: unknown placeholder '%u' (this key takes %s or %1, %%)", NULL},
    {"filter argument 2 of 1", LISTENER SERVICE "directory {\n  domain_filter = \"(|(associatedDomain=%1)(cn=%2))\"\n}\n",
     "7: directory: domain_filter: placeholder '%2' names argument 2; this key is given 1", NULL},
    {"filter without its argument", LISTENER SERVICE "directory {\n  function_filter = \"(objectClass=app)\"\n}\n",
     "7: directory: function_filter: argument 1 is not used", NULL},
    {"filter placeholder as attribute", LISTENER SERVICE "directory {\n  user_filter = \"(%s=x)\"\n}\n",
     "7: directory: user_filter: a placeholder stands for a value, not an attribute name", NULL},
    {"filter without parentheses", LISTENER SERVICE "directory {\n  user_filter = \"uid=%s\"\n}\n",
     "7: directory: user_filter: expected '('", NULL},
    {"filter empty and", LISTENER SERVICE "directory {\n  protected_filter = \"(&)(mail=%1)\"\n}\n",
     "7: directory: protected_filter: '&' takes at least one filter", NULL},
    {"filter bad escape", LISTENER SERVICE "directory {\n  user_filter = \"(&(uid=%s)(cn=a\\\\zz))\"\n}\n",
     "7: directory: user_filter: '\\' in a value must start an escape", NULL},
    {"tenant_group without %t", LISTENER SERVICE "directory {\n  tenant_group = \"cn=apps,ou=groups,dc=x\"\n}\n",
     "7: directory: tenant_group: has no %t: the tenant must be part of it", NULL},
    {"filter missing operator", LISTENER SERVICE "directory {\n  user_filter = \"(&(uid=%s)(objectClass))\"\n}\n",
     "7: directory: user_filter: expected =, ~=, >=, <= or :=", NULL},
};

CTEST(config_errors)
{
    for (size_t i = 0; i < sizeof error_cases / sizeof error_cases[0]; i++) {
        const struct error_case *ec = &error_cases[i];
        char err[512] = "", want[PATH_MAX + 512];
        op_config_t *cfg = op_config_load(write_conf(ec->text), err, sizeof err);
        snprintf(want, sizeof want, "%s:%s", conf, ec->want);
        if (cfg != NULL || strstr(err, want) == NULL || (ec->absent && strstr(err, ec->absent))) {
            fprintf(stderr, "  %s:\n    got  \"%s\"\n    want \"%s\"%s%s\n", ec->name,
                    cfg ? "(loaded)" : err, want, ec->absent ? " without " : "",
                    ec->absent ? ec->absent : "");
            ctest_failed_here = 1;
        }
        op_config_free(cfg);
    }
    cleanup();
}

/* The template validator for keys to come: a group DN pattern that must
 * name the tenant (%t), and filters of more than one argument. */
CTEST(template_kinds)
{
    char msg[256];
    const op_conf_template_t group = {.tenant = OP_TMPL_NEEDS_TENANT};
    CHECK_INT(op__config_template_check(&group, "cn=tenant-%t-apps,ou=groups,dc=x", msg, sizeof msg), 0);
    CHECK_INT(op__config_template_check(&group, "cn=apps,ou=groups,dc=x", msg, sizeof msg), -1);
    CHECK(strstr(msg, "has no %t: the tenant must be part of it") != NULL);
    CHECK_INT(op__config_template_check(&group, "cn=%s,ou=groups", msg, sizeof msg), -1);
    CHECK(strstr(msg, "unknown placeholder '%s' (this key takes %t, %%)") != NULL);
    CHECK_INT(op__config_template_check(OP_FILTER_TEMPLATE(1), "(uid=%t)", msg, sizeof msg), -1);
    CHECK(strstr(msg, "unknown placeholder '%t'") != NULL);
    const op_conf_template_t two = {.args = 2, .filter = 1, .tenant = OP_TMPL_MAY_TENANT};
    CHECK_INT(op__config_template_check(&two, "(&(member=%1)(cn=tenant-%t-%2)(!(x~=%%)))", msg, sizeof msg), 0);
    CHECK_INT(op__config_template_check(&two, "(&(member=%s)(cn=%s)(cn:dn:2.5.13.5:=a)(o;lang-de>=\\2a))",
                                        msg, sizeof msg), 0);
    CHECK_INT(op__config_template_check(&two, "(&(member=%s)(cn>=a*))", msg, sizeof msg), -1);
    CHECK(strstr(msg, "'*' is only allowed after '='") != NULL);
    CHECK_INT(op__config_template_check(&two, "(!(a=%1)(b=%2))", msg, sizeof msg), -1);
    CHECK(strstr(msg, "'!' takes exactly one filter at offset 14") != NULL);
}

/* ---- what a start needs of the machine: outpostd --check's preflight ---- */

static const struct preflight_case {
    const char *name;
    const char *text;
    const char *want;   /* substring of the message, after "outpost.conf:" */
    int root_only;      /* meaningful only when the test runs as root */
} preflight_cases[] = {
    {"unknown user", "daemon {\n  state_dir = st\n  user = no-such-user-x\n}\n" LISTENER SERVICE,
     "3: daemon: user 'no-such-user-x' does not exist", 0},
    {"unknown group", "daemon {\n  state_dir = st\n  group = no-such-group-x\n}\n" LISTENER SERVICE,
     "3: daemon: group 'no-such-group-x' does not exist", 0},
    {"state_dir not writable by the user", "daemon {\n  user = nobody\n  state_dir = ro\n}\n" LISTENER SERVICE,
     "3: daemon: state_dir ", 0},
    {"state_dir under a file", "daemon {\n  state_dir = afile/state\n}\n" LISTENER SERVICE,
     "2: daemon: state_dir ", 0},
    {"socket directory that cannot be created", "daemon {\n  state_dir = st\n}\n"
     "listener a {\n  service = s\n  listen = unix:afile/run/a.sock\n}\n" SERVICE,
     "6: listener 'a': the directory of the socket ", 0},
    {"unknown socket_group", "daemon {\n  state_dir = st\n}\n"
     "listener a {\n  listen = unix:run/a.sock\n  service = s\n  socket_group = no-such-group-x\n}\n" SERVICE,
     "7: listener 'a': socket_group: group 'no-such-group-x' does not exist", 0},
    {"missing bind_password_file", "daemon {\n  state_dir = st\n}\n" LISTENER SERVICE
     "ldap {\n  uris = [ldap://127.0.0.1/]\n  bind_password_file = nosuch.pw\n}\n",
     "11: ldap: bind_password_file ", 0},
    {"bind_password_file the user cannot read", "daemon {\n  state_dir = st\n  user = nobody\n}\n"
     LISTENER SERVICE "ldap {\n  uris = [ldap://127.0.0.1/]\n  bind_password_file = secret.pw\n}\n",
     "12: ldap: bind_password_file ", 1},
    {"missing ca_file", "daemon {\n  state_dir = st\n}\n" LISTENER SERVICE
     "ldap {\n  uris = [ldaps://127.0.0.1/]\n  ca_file = /nonexistent/ca.pem\n}\n",
     "11: ldap: ca_file /nonexistent/ca.pem is not readable", 0},
};

static void make_file(const char *name, const char *text, mode_t mode)
{
    FILE *f = fopen(in_dir(name, 0), "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0 || chmod(in_dir(name, 0), mode) != 0) {
        perror(name);
        exit(2);
    }
}

CTEST(preflight_errors)
{
    write_conf(LISTENER SERVICE); /* makes tmpdir */
    chmod(tmpdir, 0711);          /* reachable by the daemon's user (nobody) */
    make_file("/afile", "x", 0644);
    make_file("/secret.pw", "pw\n", 0600);
    mkdir(in_dir("/ro", 0), 0500);
    for (size_t i = 0; i < sizeof preflight_cases / sizeof preflight_cases[0]; i++) {
        const struct preflight_case *pc = &preflight_cases[i];
        if (pc->root_only && geteuid() != 0)
            continue;
        char err[512] = "", want[PATH_MAX + 512];
        op_config_t *cfg = op_config_load(write_conf(pc->text), err, sizeof err);
        CHECK(cfg != NULL); /* the file itself is fine */
        if (cfg == NULL) {
            fprintf(stderr, "  %s: %s\n", pc->name, err);
            continue;
        }
        int rc = op_config_preflight(cfg, err, sizeof err);
        snprintf(want, sizeof want, "%s:%s", conf, pc->want);
        if (rc == 0 || strstr(err, want) == NULL) {
            fprintf(stderr, "  %s:\n    got  \"%s\"\n    want \"%s\"\n", pc->name, rc ? err : "(passed)", want);
            ctest_failed_here = 1;
        }
        op_config_free(cfg);
    }
    /* Missing directories the start creates are fine. */
    op_config_t *cfg = load_ok("daemon {\n  state_dir = new/state\n}\n"
                               "listener a {\n  service = s\n  listen = unix:new/run/a.sock\n}\n" SERVICE);
    char err[512] = "";
    CHECK(cfg != NULL && op_config_preflight(cfg, err, sizeof err) == 0);
    if (err[0])
        fprintf(stderr, "  %s\n", err);
    op_config_free(cfg);
    unlink(in_dir("/afile", 0));
    unlink(in_dir("/secret.pw", 0));
    rmdir(in_dir("/ro", 0));
    cleanup();
}

CTEST(config_error_nesting_too_deep)
{
    char *text = nested(20), err[512] = "";
    CHECK(op_config_load(write_conf(text), err, sizeof err) == NULL);
    CHECK(strstr(err, "outpost.conf:17: blocks nested more than 16 deep") != NULL);
    free(text);
    cleanup();
}

CTEST(config_action_length)
{
    char text[2048], err[512] = "";
    /* "451 4.3.5 " and 990 digits: 1000 bytes, Postfix's limit. */
    snprintf(text, sizeof text, LISTENER "service s { default_action = \"451 4.3.5 %0990d\" }\n", 0);
    op_config_t *cfg = load_ok(text);
    CHECK(cfg != NULL && strlen(cfg->services[0].default_action) == 1000);
    op_config_free(cfg);
    snprintf(text, sizeof text, LISTENER "service s { default_action = \"451 4.3.5 %0991d\" }\n", 0);
    CHECK(op_config_load(write_conf(text), err, sizeof err) == NULL);
    CHECK(strstr(err, "outpost.conf:5: service 's': default_action is 1001 bytes long; "
                      "Postfix accepts at most 1000") != NULL);
    cleanup();
}

/* ---- the reference ---- */

static char *reference(void)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    op_config_write_reference(f);
    fclose(f);
    return buf;
}

CTEST(reference_lists_every_section_and_key)
{
    char *ref = reference();
    CHECK(strncmp(ref, "### daemon\n", 11) == 0);
    CHECK(strstr(ref, "\n### request_limits\n") != NULL);
    CHECK(strstr(ref, "\n### listener\n") != NULL);
    CHECK(strstr(ref, "\n### service\n") != NULL);
    CHECK(strstr(ref, "| key | type | default | description |\n|---|---|---|---|\n") != NULL);
    CHECK(strstr(ref, "| `deadline` | duration | `10s` | ") != NULL);
    CHECK(strstr(ref, "| `socket_mode` | octal mode | `0660` | ") != NULL);
    CHECK(strstr(ref, "| `log_level` | enum: debug, info, notice, warning, error | `info` | ") != NULL);
    CHECK(strstr(ref, "| `max_request` | integer | `65536` | ") != NULL);
    CHECK(strstr(ref, "| `tenant` | string | `\"\"` | ") != NULL);
    CHECK(strstr(ref, "| `listen` | address | required | ") != NULL);
    free(ref);
}

CTEST(reference_is_in_docs_verbatim)
{
    FILE *f = fopen("docs/config.md", "r");
    CHECK(f != NULL);
    if (f == NULL)
        return;
    char *doc = NULL;
    size_t cap = 0;
    ssize_t n = getdelim(&doc, &cap, '\0', f);
    fclose(f);
    CHECK(n > 0);
    char *ref = reference();
    const char *begin = "<!-- BEGIN GENERATED REFERENCE -->\n", *end = "<!-- END GENERATED REFERENCE -->";
    char *b = strstr(doc, begin), *e = strstr(doc, end);
    CHECK(b != NULL && e != NULL);
    if (b != NULL && e != NULL) {
        b += strlen(begin);
        /* Exactly the generated text, maybe with blank lines around it. */
        while (*b == '\n')
            b++;
        while (e > b && e[-1] == '\n')
            e--;
        size_t rl = strlen(ref);
        while (rl > 0 && ref[rl - 1] == '\n')
            rl--;
        if ((size_t)(e - b) != rl || memcmp(b, ref, rl) != 0) {
            fprintf(stderr, "  docs/config.md is out of date: regenerate the reference from "
                            "op_config_write_reference\n");
            ctest_failed_here = 1;
        }
    }
    free(ref);
    free(doc);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
