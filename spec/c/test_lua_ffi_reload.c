/* The DNS fast path across a reload: two generations' Lua states over one
 * DNS service, as after `outpostctl reload` (the service and its cache
 * outlive generations; each state keeps its own tables of cached answers,
 * lua_api_ffi.lua).  Against the harness's unbound: needs
 * `spec/harness/harness.sh up` (spec/run-all.sh does it). */
#include "ctest.h"
#include "ctest_loop.h"
#include "core/request.h"
#include "core/services.h"
#include "core/vm.h"
#include "lookup/dns.h"

#include <lauxlib.h>

static char dns_port[16];

static void load_env(void)
{
    ctest_harness_env("DNS_PORT", dns_port, sizeof dns_port);
}

static uv_loop_t loop;

typedef struct {
    int finished, status;
} host_t;

static void on_finished(op_request_t *req, int status, void *data)
{
    (void)req;
    host_t *h = data;
    h->finished = 1;
    h->status = status;
}

/* Runs chunk as a request's code in L (it may wait: the loop runs until it
 * ends); its one result, a string, is "" when all was well. */
static const char *run(lua_State *L, const char *chunk)
{
    lua_State *co = lua_newthread(L);
    luaL_ref(L, LUA_REGISTRYINDEX);
    if (luaL_loadstring(co, chunk) != 0)
        return lua_tostring(co, -1);
    host_t h = {0, 0};
    op_request_t *req = op_request_host_new(&loop, co, on_finished, &h);
    op_request_host_resume(req, 0);
    ctest_run_until(&loop, &h.finished, 5);
    free(req);
    if (!h.finished)
        return "the chunk did not end within 5 s";
    if (h.status != 0 || !lua_isstring(co, -1))
        return lua_isstring(co, -1) ? lua_tostring(co, -1) : "(no string)";
    return lua_tostring(co, -1);
}

static lua_State *generation(void)
{
    char err[512];
    lua_State *L = op_vm_new_state("lua", 1, err, sizeof err);
    if (L == NULL)
        fprintf(stderr, "op_vm_new_state: %s\n", err);
    return L;
}

/* The first lookup may wait (a miss); then every hit is the same shared
 * table, kept in a global of the state to compare with later. */
static const char *const FIRST =
    "local dns = require 'outpost.dns'\n"
    "local reg = debug.getregistry()['outpost.ffi']\n"
    "if not reg.active then return 'the fast paths are off' end\n"
    "assert(dns.a('aonly.test'))\n"
    "local a, b = dns.a('aonly.test'), dns.a('AOnly.test.')\n"
    "if a ~= b then return 'two hits, two tables' end\n"
    "if a[1] ~= '127.0.0.3' or not (a.ttl > 0 and a.ttl <= 200) then return 'answer ' .. tostring(a[1]) end\n"
    "kept = a\n"
    "return ''\n";

/* The same, in a state that already holds its table. */
static const char *const AGAIN =
    "local dns = require 'outpost.dns'\n"
    "local a = dns.a('aonly.test')\n"
    "if a ~= kept then return 'another table for the same answer' end\n"
    "if a[1] ~= '127.0.0.3' then return 'answer ' .. tostring(a[1]) end\n"
    "return ''\n";

CTEST(a_reload_gets_tables_of_its_own_for_the_same_cached_answers)
{
    unsetenv("OUTPOST_LUA_FFI");
    load_env();
    uv_loop_init(&loop);
    char server[64], *servers[1] = {server};
    snprintf(server, sizeof server, "127.0.0.1:%s", dns_port);
    op_dns_conf_t conf = {.servers = servers, .nservers = 1, .timeout = 0.5, .tries = 1,
                          .cache_size = 100, .max_ttl = 86400, .negative_max_ttl = 3600};
    char err[256];
    op_dns_t *dns = op_dns_new(&loop, &conf, err, sizeof err);
    CHECK(dns != NULL);
    static op_services_t services;
    services.loop = &loop;
    services.dns = dns;
    op_services = &services;

    lua_State *old = generation();
    CHECK(old != NULL);
    CHECK_STR(run(old, FIRST), "");
    op_dns_stats_t before, after;
    op_dns_stats(dns, &before);

    /* The reload: a new state over the same service.  Its first lookup is
     * a hit of the service's cache, answered by a table of its own. */
    lua_State *fresh = generation();
    CHECK(fresh != NULL);
    CHECK_STR(run(fresh, FIRST), "");
    op_dns_stats(dns, &after);
    CHECK_INT((int)(after.queries - before.queries), 0); /* all hits: nothing sent */
    CHECK_INT((int)(after.hits - before.hits), 3);

    /* Requests still in flight on the old generation keep their tables. */
    CHECK_STR(run(old, AGAIN), "");
    /* The old generation ends; the new one's tables are its own. */
    lua_close(old);
    CHECK_STR(run(fresh, AGAIN), "");
    lua_close(fresh);

    op_services = NULL;
    op_dns_free(dns);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_INT(uv_loop_close(&loop), 0);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
