/* VM generations: one lua_State holding the configuration, the libraries,
 * the policies and the data lists of one load.
 *
 * A request takes a reference to the generation that is current when it
 * starts and runs to its end on it, so a reload never changes the code under
 * a request in flight.  SIGHUP builds a new generation beside the running
 * one; only when everything loaded does it become current.  The old one is
 * closed when its last request releases it. */
#ifndef OP_VM_H
#define OP_VM_H

#include "config/config.h"

#include <lua.h>
#include <stdint.h>

typedef struct op_gen op_gen_t;

#define OP_GEN_POOL_MAX 128

/* The entry points a policy may define: on_request for the policy
 * delegation protocol, the rest for milter phases. */
typedef enum {
    OP_PHASE_REQUEST,
    OP_PHASE_CONNECT,
    OP_PHASE_HELO,
    OP_PHASE_MAIL,
    OP_PHASE_RCPT,
    OP_PHASE_DATA,
    OP_PHASE_HEADER,
    OP_PHASE_EOH,
    OP_PHASE_BODY,
    OP_PHASE_EOM,
    OP_PHASE_ABORT,
    OP_PHASE_COUNT,
} op_phase_t;

/* "on_request", "on_connect", ... */
const char *op_phase_handler_name(op_phase_t phase);

typedef struct {
    const op_service_conf_t *conf;
    /* registry refs of the policy's handlers, LUA_NOREF where it has none */
    int handler_ref[OP_PHASE_COUNT];
    int policy_ref;  /* the policy table itself */
    size_t keep_body; /* milter: body bytes to keep for on_eom (policy.keep_body) */
    void *proto;      /* what the protocol read from the policy (op_gen_proto_t), or NULL */
} op_gen_service_t;

/* A protocol's own settings of a service, read from its policy table at
 * load (the milter's policy.macros): the generation knows no protocol, so
 * the daemon hands it the reader, and the service keeps the result in its
 * proto slot for the protocol alone to read. */
typedef struct {
    /* The policy table is on the top of L and stays there.  0, with *slot
     * set (or left NULL: nothing declared), or -1 with the error in err. */
    int (*load)(lua_State *L, void **slot, char *err, size_t errlen);
    void (*free)(void *slot);
} op_gen_proto_t;

/* The allocator of a generation's Lua: LuaJIT's own, wrapped to count what
 * the generation holds.  Past max it refuses to grow, but only while a
 * request's Lua runs (armed): there an allocation that fails raises a Lua
 * error the request's coroutine catches.  Elsewhere the engine's own calls
 * (lua_createtable for a request, a lookup's results pushed before a
 * resume) are not protected, and a refusal would be a panic. */
typedef struct {
    lua_Alloc f;
    void *ud;
    size_t total;   /* bytes held */
    size_t max;     /* lua_memory_max */
    int armed;
    int refused;    /* a growth was refused in the run in progress */
    int stopped;    /* the run in progress was stopped past 7/8 of max */
} op_lua_mem_t;

struct op_gen {
    uint64_t number;        /* 1, 2, ... in load order; logged with requests */
    lua_State *L;
    op_config_t *cfg;       /* owned */
    op_gen_service_t *services; /* parallel to cfg->services */
    int refs;               /* requests in flight, +1 while current */
    int action_mt_ref;      /* registry ref of the action metatable */
    int worker_ref;         /* registry ref of sandbox.worker, the coroutine body */
    /* Idle request coroutines, suspended in sandbox.worker, ready for the
     * next request: creating and collecting a coroutine per request cost
     * more than running a simple policy. */
    lua_State *pool[OP_GEN_POOL_MAX];
    int pool_ref[OP_GEN_POOL_MAX];
    int npool;
    const op_gen_proto_t *proto; /* the reader of services' proto slots, or NULL */
    op_lua_mem_t mem;
};

/* Builds a generation from cfg (taking ownership of it even on failure):
 * standard libraries, the sandbox, the preloaded C modules, and every
 * service's policy, with proto (may be NULL) reading each policy's protocol
 * settings.  Returns NULL with "FILE:LINE: message" in err. */
op_gen_t *op_gen_create(op_config_t *cfg, uint64_t number, const op_gen_proto_t *proto, char *err,
                        size_t errlen);

void op_gen_ref(op_gen_t *gen);
/* Closes the lua_State and frees the generation when the last ref goes. */
void op_gen_unref(op_gen_t *gen);

const op_gen_service_t *op_gen_service(const op_gen_t *gen, const char *name);

/* A lua_State with the standard libraries, package.path covering
 * <lua_dir>/lib, the outpost C modules preloaded and the action metatable
 * registered, but no sandbox and no policies: what `outpostd test` hosts
 * busted in.  The sandbox loader is available as require "outpost.sandbox".
 * jit 0 turns LuaJIT's compiler off before any module opens, so the modules
 * pick their classic functions over the FFI fast paths (lua/lua_api_ffi.h). */
lua_State *op_vm_new_state(const char *lua_dir, int jit, char *err, size_t errlen);

/* What outpost.config() returns: the services' settings policies use. */
void op_vm_set_config(lua_State *L, const op_config_t *cfg);

/* Where outpost.lists.read finds lists (the configuration's lists_dir). */
void op_vm_set_lists_dir(lua_State *L, const char *dir);
/* The site's overrides (daemon { site_lua_dir }): its lib/ is searched
 * before lua_dir's.  dir NULL: none. */
void op_vm_set_site_lua_dir(lua_State *L, const char *dir);

/* Registry key of the action metatable; see lua_api_outpost.c. */
#define OP_ACTION_MT "outpost.action"

#endif
