/* The FFI fast paths of the outpost.* modules (docs/architecture.md, "Fast
 * paths").
 *
 * A hot primitive whose answer is already in the C core (a request
 * attribute, a netset match, a domain's normal form, a limit on RocksDB,
 * a DNS or LDAP answer in the lookup cache) has two
 * implementations: the classic lua_CFunction, which is the reference and
 * what runs under daemon { lua_jit = no }, and a Lua function in
 * engine/lua/lua_api_ffi.lua that calls a plain C function below through
 * the FFI.  With the JIT on, a compiled library calls the latter without
 * leaving its trace (a classic call stitches it: docs/performance.md).
 *
 * The Lua side gets the C functions as one table of function pointers
 * (op_ffi_api_t) handed over as a light userdata when the chunk loads, so
 * the binary exports no symbol for them.  Policies never see `ffi`: it
 * lives in that built-in chunk, loaded with the host's globals.
 *
 * A fast function never yields, never raises and builds no Lua value: it
 * answers into caller-owned buffers, and whatever it cannot answer (a bad
 * argument, an ended request, a lookup that misses or may not wait here:
 * op_request_waitable) it leaves to the classic function, which raises
 * with the reference's own message or waits as it always did. */
#ifndef OP_LUA_API_FFI_H
#define OP_LUA_API_FFI_H

#include <lauxlib.h>
#include <lua.h>
#include <stddef.h>

/* limit.check/add/reserve's answer (counters.h's op_counters_answer_t),
 * in the numbers Lua gets. */
typedef struct op_ffi_limit_answer {
    int ok;
    int source;          /* op_max_source_t */
    double max, used, remaining;
    double next_free;    /* -1: never */
    double window, resolution;
} op_ffi_limit_answer_t;

/* A DNS or LDAP answer a fast path found in its cache (lua_api_dns.c,
 * lua_api_ldap.c). */
typedef struct op_ffi_hit {
    double serial;     /* the answer's, for life (exact: far below 2^53) */
    double expires_ms; /* DNS: when it leaves the cache, on dns_now_ms's clock */
    int status;        /* 0: an answer; else a negative one (dns_token, ldap_token) */
    int n;             /* DNS: its records, read with dns_record */
} op_ffi_hit_t;

/* ldap.search's argument, read by lua_api_ffi.lua (strings are the query
 * table's own, alive for the call). */
typedef struct op_ffi_ldap_query {
    const char *base;
    int scope;                 /* OP_LDAP_SCOPE_* */
    const char *filter;        /* the template (ldap_filter.h) */
    const char *const *args;
    const size_t *arg_lens;
    int nargs;
    const char *const *attrs;
    int nattrs;                /* -1: no attrs list */
    double timeout;            /* 0: none given */
} op_ffi_ldap_query_t;

/* Keep in step with the cdef in engine/lua/lua_api_ffi.lua: the chunk
 * refuses to load when `size` differs from its own idea of the struct. */
typedef struct op_ffi_api {
    size_t size;
    /* outpost.domain: the length of the normal form written to out (cap >=
     * OP_NAME_MAX + 1), OP_FFI_SAME when it equals name, or -1 (badname). */
    int (*domain)(const char *name, size_t len, char *out, size_t cap);
    /* req.attrs[name]: the value and its length in *vlen, or NULL with
     * *vlen 0 (no such attribute) or -1 (the request has ended). */
    const char *(*attr)(const void *attrs_ud, const char *name, size_t len, int *vlen);
    /* netset:match(addr): the label and *prefix, or NULL with *prefix 0 (no
     * match, or not an address) or -1 (the set was freed). */
    const char *(*netset_match)(const void *netset_ud, const char *addr, int *prefix);
    /* limit.check (kind 0), add (1), reserve (2) answered at once: 1 with
     * *out filled, -1 for "unavailable" (the store failed), 0 when the
     * classic function must answer (no counters service, an unknown
     * limit, a backend that may wait, a dry run, a NUL in a key). */
    int (*limit)(int kind, const char *name, size_t name_len, const char *subject,
                 size_t subject_len, const char *instance, size_t instance_len, double n,
                 double dir_max, op_ffi_limit_answer_t *out);
    /* op_counters_source_name */
    const char *(*limit_source)(int source);
    /* DNS and LDAP cache hits: 1 with *out filled, 0 when the classic
     * function must answer (a miss, no service, a request that may not
     * wait here (op_request_waitable), a dry run, anything it would
     * refuse).  dns: dns.a/aaaa/mx/txt/ptr by type (a PTR's name is the
     * reverse name: dns_reverse). */
    int (*dns)(int type, const char *name, size_t len, op_ffi_hit_t *out);
    /* op_dns_reverse_name: the length of ip's reverse name written to out,
     * or -1 (not an address, or cap too small); the chunk keeps it per ip
     * and asks dns(OP_DNS_PTR, ...) with it. */
    int (*dns_reverse)(const char *ip, char *out, size_t cap);
    /* Record i of the last hit, if its serial is still `serial`: the text
     * and *len, *pref (MX); NULL otherwise. */
    const char *(*dns_record)(double serial, int i, size_t *len, int *pref);
    const char *(*dns_token)(int status);
    double (*dns_now_ms)(void);
    int (*ldap)(const op_ffi_ldap_query_t *q, op_ffi_hit_t *out);
    const char *(*ldap_token)(int status);
    /* op_request_foreign */
    void (*foreign)(int delta);
} op_ffi_api_t;

#define OP_FFI_SAME (-2)

/* The fast functions, one per binding file beside its classic twin. */
int op__ffi_domain(const char *name, size_t len, char *out, size_t cap);
const char *op__ffi_attr(const void *attrs_ud, const char *name, size_t len, int *vlen);
const char *op__ffi_netset_match(const void *netset_ud, const char *addr, int *prefix);
int op__ffi_limit(int kind, const char *name, size_t name_len, const char *subject,
                  size_t subject_len, const char *instance, size_t instance_len, double n,
                  double dir_max, op_ffi_limit_answer_t *out);
const char *op__ffi_limit_source(int source);
int op__ffi_dns(int type, const char *name, size_t len, op_ffi_hit_t *out);
int op__ffi_dns_reverse(const char *ip, char *out, size_t cap);
const char *op__ffi_dns_record(double serial, int i, size_t *len, int *pref);
const char *op__ffi_dns_token(int status);
double op__ffi_dns_now_ms(void);
int op__ffi_ldap(const op_ffi_ldap_query_t *q, op_ffi_hit_t *out);
const char *op__ffi_ldap_token(int status);
void op__ffi_foreign(int delta);

/* Pushes the implementation of `name` (e.g. "outpost.domain") that this
 * state uses: the FFI one when the JIT is on and OUTPOST_LUA_FFI is not
 * "off", else `classic`.  Both are kept in the registry's "outpost.ffi"
 * table ({active =, classic = {name = fn}, fast = {name = fn}}) so specs
 * can compare them on the same inputs.  Returns 1 when it pushed the FFI
 * one. */
int op_ffi_offer(lua_State *L, const char *name, lua_CFunction classic);
/* op_ffi_offer, with the value at stack index `extra` handed to the
 * chunk's maker as its second argument (what else the fast function needs
 * of its module: lua_api_ldap.c's decoded answers). */
int op_ffi_offer_with(lua_State *L, const char *name, lua_CFunction classic, int extra);
/* op_ffi_offer for each of fns (NULL-ended), set as fields of the table on
 * top of the stack: module "dns" and {"a", l_dns_a} offer "dns.a" as its
 * field "a". */
void op_ffi_offer_fields(lua_State *L, const char *module, const luaL_Reg *fns);

#endif
