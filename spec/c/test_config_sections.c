/* The sections modules register (config_schema.h): each converts into the
 * module's own settings struct, with defaults when the file has no such
 * section; a section only Lua reads (directory { }) reaches a generation as
 * a table of its values, without C of its own. */
#include "config/config.h"
#include "control/control_config.h"
#include "counters/counters_config.h"
#include "ctest.h"
#include "lookup/dns_config.h"
#include "lookup/ldap_config.h"
#include "lookup/smtp_config.h"

#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <lualib.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[PATH_MAX];
static char conf[PATH_MAX + 32];

static op_config_t *load(const char *text, char *err, size_t errlen)
{
    if (tmpdir[0] == '\0') {
        char tmpl[] = "/tmp/outpost-test-XXXXXX";
        if (mkdtemp(tmpl) == NULL || realpath(tmpl, tmpdir) == NULL)
            exit(2);
        snprintf(conf, sizeof conf, "%s/outpost.conf", tmpdir);
    }
    FILE *f = fopen(conf, "w");
    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        exit(2);
    op_config_t *cfg = op_config_load(conf, err, errlen);
    unlink(conf);
    if (cfg == NULL)
        fprintf(stderr, "  %s\n", err);
    return cfg;
}

static void cleanup(void)
{
    if (tmpdir[0] != '\0')
        rmdir(tmpdir);
}

#define BASE "listener a { listen = unix:a.sock; service = s }\nservice s { }\n"

CTEST(absent_sections_give_their_defaults)
{
    char err[512];
    op_config_t *cfg = load(BASE, err, sizeof err);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return cleanup();
    const op_dns_conf_t *dns = op_dns_config(cfg);
    CHECK_INT(dns->nservers, 0);
    CHECK(dns->timeout == 2 && dns->max_ttl == 86400 && dns->negative_max_ttl == 3600);
    CHECK_INT(dns->tries, 2);
    CHECK_INT(dns->cache_size, 100 * 1024);
    const op_smtp_verify_conf_t *sv = op_smtp_verify_config(cfg);
    CHECK_STR(sv->smtp.helo, "localhost");
    CHECK(sv->host == NULL && sv->port == 25 && sv->smtp.positive_ttl == 7 * 86400);
    const op_control_conf_t *ctl = op_control_config(cfg);
    CHECK(ctl->socket == NULL && ctl->group == NULL && ctl->mode == 0660);
    const op_ldap_config_t *ldap = op_ldap_config(cfg);
    CHECK(ldap->nuris == 0 && ldap->pool_size == 2 && ldap->timeout == 5);
    op_counters_conf_t cc;
    op_counters_conf_of(cfg, &cc);
    CHECK(cc.path == NULL && cc.nlimits == 0 && cc.reservation_timeout == 1800 && !cc.sync);
    CHECK_STR(cc.state_dir, "/var/lib/outpost");
    op_config_free(cfg);
    cleanup();
}

CTEST(sections_convert_into_the_modules_structs)
{
    char err[512];
    op_config_t *cfg = load(BASE "dns { servers = [\"127.0.0.1:53\", \"[::1]:5353\"]; tries = 3 }\n"
                                 "smtp_verify { host = mx.example; port = 2525 }\n"
                                 "ldap { uris = [ldap://127.0.0.1:389/]; pool_size = 4 }\n"
                                 "counters { path = ctr; sync = yes }\n"
                                 "limit rcpt { max = 5; window = 1h; resolution = 1m }\n"
                                 "limit day { max = 100; max_override = 200 }\n",
                            err, sizeof err);
    CHECK(cfg != NULL);
    if (cfg == NULL)
        return cleanup();
    const op_dns_conf_t *dns = op_dns_config(cfg);
    CHECK_INT(dns->nservers, 2);
    CHECK_STR(dns->servers[1], "[::1]:5353");
    CHECK_INT(dns->tries, 3); /* an int in op_dns_conf_t */
    const op_smtp_verify_conf_t *sv = op_smtp_verify_config(cfg);
    CHECK_STR(sv->host, "mx.example");
    CHECK_INT(sv->port, 2525);
    const op_ldap_config_t *ldap = op_ldap_config(cfg);
    CHECK_INT(ldap->nuris, 1);
    CHECK_INT(ldap->pool_size, 4);
    op_counters_conf_t cc;
    op_counters_conf_of(cfg, &cc);
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/ctr", tmpdir);
    CHECK_STR(cc.path, path);
    CHECK(cc.sync == 1);
    CHECK_INT(cc.nlimits, 2);
    if (cc.nlimits == 2) {
        CHECK_STR(cc.limits[0].name, "rcpt");
        CHECK(cc.limits[0].window == 3600 && cc.limits[0].resolution == 60);
        CHECK_INT(cc.limits[0].max_override, 5); /* max_override defaults to max */
        CHECK_STR(cc.limits[1].name, "day");
        CHECK_INT(cc.limits[1].max_override, 200);
    }
    op_config_free(cfg);
    cleanup();
}

/* outpost.config() of a generation built from text, as code in L runs it. */
static lua_State *state_of(const char *text)
{
    char err[512];
    op_config_t *cfg = load(text, err, sizeof err);
    if (cfg == NULL)
        return NULL;
    lua_State *L = luaL_newstate();
    luaL_openlibs(L);
    lua_newtable(L);
    op_config_push_lua(L, cfg);
    lua_setglobal(L, "config");
    op_config_free(cfg); /* the table is a copy */
    return L;
}

static const char *eval(lua_State *L, const char *expr)
{
    char code[512];
    snprintf(code, sizeof code, "return tostring(%s)", expr);
    if (luaL_dostring(L, code) != 0)
        return lua_tostring(L, -1);
    return lua_tostring(L, -1);
}

CTEST(directory_reaches_lua_as_a_table)
{
    lua_State *L = state_of(BASE);
    CHECK(L != NULL);
    if (L == NULL)
        return cleanup();
    CHECK_STR(eval(L, "config.directory.base"), "dc=example,dc=org");
    CHECK_STR(eval(L, "config.directory.default_limit"), "250");
    CHECK_STR(eval(L, "type(config.directory.default_limit)"), "number");
    CHECK_STR(eval(L, "table.concat(config.directory.sender_attrs, ',')"), "mail,mailLocalAddress");
    CHECK_STR(eval(L, "config.dns"), "nil"); /* only sections marked for Lua */
    lua_close(L);

    L = state_of(BASE "directory { base = \"o=x\"; sender_attrs = [mail, alias]; default_limit = 1k }\n");
    CHECK(L != NULL);
    if (L == NULL)
        return cleanup();
    CHECK_STR(eval(L, "config.directory.base"), "o=x");
    CHECK_STR(eval(L, "config.directory.default_limit"), "1024");
    CHECK_STR(eval(L, "table.concat(config.directory.sender_attrs, ',')"), "mail,alias");
    CHECK_STR(eval(L, "config.directory.lock_attr"), "pwdAccountLockedTime");
    lua_close(L);

    /* An empty list means the default, as it always has. */
    L = state_of(BASE "directory { sender_attrs = [] }\n");
    CHECK(L != NULL);
    if (L != NULL) {
        CHECK_STR(eval(L, "table.concat(config.directory.sender_attrs, ',')"), "mail,mailLocalAddress");
        lua_close(L);
    }
    cleanup();
}

CTEST(section_errors_keep_their_messages)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {BASE "dns { tries = 11 }\n", ":3: dns: tries 11 is out of range: it must be at least 1 and at most 10"},
        {BASE "dns { servers = [example.org] }\n", ":3: dns: servers: 'example.org' is not IP"},
        {BASE "directory { bsae = x }\n", ":3: directory: unknown key 'bsae' (did you mean 'base'?)"},
        {BASE "limit l { max = 1; window = 1h; resolution = 7m }\n", ":3: limit 'l': resolution 420s must divide window 3600s"},
        {BASE "contrl { }\n", ":3: unknown section 'contrl' (did you mean 'control'?)"},
        {"listener a { listen = tcp:127.0.0.1:25; service = s; socket_mode = 0600 }\nservice s { }\n",
         ":1: listener 'a': socket_mode applies only to unix: listeners, not to tcp:127.0.0.1:25"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[512] = "";
        if (tmpdir[0] == '\0')
            op_config_free(load(BASE, err, sizeof err));
        FILE *f = fopen(conf, "w");
        if (f == NULL || fputs(cases[i].text, f) < 0 || fclose(f) != 0)
            exit(2);
        op_config_t *cfg = op_config_load(conf, err, sizeof err);
        unlink(conf);
        if (cfg != NULL || strstr(err, cases[i].want) == NULL) {
            fprintf(stderr, "  case %zu: got \"%s\", want \"...%s\"\n", i, cfg ? "(loaded)" : err,
                    cases[i].want);
            ctest_failed_here = 1;
        }
        op_config_free(cfg);
    }
    cleanup();
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
