/* The daemon configuration: the parsed tree of conf_parse.h checked against
 * the schema of each section and turned into typed values.  A section
 * belongs to the module that uses it: its rows and its settings struct live
 * there (engine/lookup/dns_config.c, ...) and it is registered in
 * config_sections.c; the module reads its settings through its accessor
 * (op_dns_config(cfg), ...).  op_config_t itself keeps the process-wide
 * daemon { } and request_limits { }, and the listeners and services the
 * core binds through.  Strict: an unknown key, a key in
 * the wrong section, a value of the wrong type, a duplicated key or a
 * reference to an undefined service is an error naming FILE:LINE (with a
 * "did you mean" hint for near misses).
 *
 * Relative paths in the file are relative to the directory of the file, so
 * the shipped conf/outpost.conf works from a checkout. */
#ifndef OP_CONFIG_H
#define OP_CONFIG_H

#include "config/conf_parse.h"
#include "core/listener_config.h"
#include "core/service_config.h"

#include <stddef.h>
#include <stdio.h>

#define OP_CONFIG_MAX_SECTIONS 32

/* daemon { lua_jit }: the index of its value in "no|yes|lib". */
enum { OP_LUA_JIT_NO, OP_LUA_JIT_YES, OP_LUA_JIT_LIB };

struct op_conf_section; /* config_schema.h */

typedef struct {
    char *path;           /* absolute path of the config file */
    char *dir;            /* its directory */

    /* daemon { } */
    char *user;           /* NULL: keep the user we started as */
    char *group;
    char *state_dir;      /* absolute */
    char *lua_dir;        /* absolute; holds lib/ and policies/ */
    char *site_lua_dir;   /* absolute or NULL: its lib/ and policies/ files override lua_dir's */
    char *lists_dir;      /* absolute; the data lists (outpost.lists) */
    double drain_timeout; /* seconds SIGTERM waits for requests in flight */
    int log_level;        /* op_log_level_t */
    int log_decisions;    /* one line per request */
    size_t max_connections;
    double idle_timeout;  /* seconds a connection may stay silent */
    double request_timeout; /* seconds a request may take to arrive in full */
    int lua_jit;          /* OP_LUA_JIT_*: where LuaJIT compiles (core/watchdog.h says the cost) */
    size_t lua_memory_max; /* bytes a generation's Lua may hold (core/vm.c) */

    /* request_limits { } */
    size_t max_line;
    size_t max_attrs;
    size_t max_request;

    /* listener { } and service { } (core/listener_config.h,
     * core/service_config.h): the items of their sections, kept here too
     * since every part of the core binds through them. */
    op_listener_conf_t *listeners;
    size_t nlisteners;
    op_service_conf_t *services;
    size_t nservices;

    /* The sections modules registered (config_schema.h), by their index
     * in the registry: the section's struct (or slots), or for a named
     * section the array of its items.  Read them with op_config_section
     * and op_config_items, through the module's accessor. */
    void *sections[OP_CONFIG_MAX_SECTIONS];
    size_t nitems[OP_CONFIG_MAX_SECTIONS];

    op_conf_node_t *root; /* the whole tree, for modules with sections of their own */
} op_config_t;

/* Loads, parses and validates.  Returns NULL with "FILE:LINE: message" in
 * err on any error. */
op_config_t *op_config_load(const char *path, char *err, size_t errlen);
void op_config_free(op_config_t *cfg);

/* What a start would fail on beyond the file itself (config_host.c): the
 * daemon's user and group exist, the files it reads as that user are
 * readable, the directories it creates can be.  `outpostd --check` runs
 * it; 0, or -1 with "FILE:LINE: message" (the key's line) in err. */
int op_config_preflight(const op_config_t *cfg, char *err, size_t errlen);

const op_service_conf_t *op_config_service(const op_config_t *cfg, const char *name);

/* The converted settings of a section a module registered: its struct
 * (defaults applied when the file has no such section); for a named
 * section the array of items and their number in *n. */
const void *op_config_section(const op_config_t *cfg, const struct op_conf_section *sec);
const void *op_config_items(const op_config_t *cfg, const struct op_conf_section *sec, size_t *n);

/* Sets, in the table at the top of L's stack, a table of the values of each
 * section marked for Lua (directory { }), by section name (config_lua.c). */
struct lua_State;
void op_config_push_lua(struct lua_State *L, const op_config_t *cfg);

/* Markdown reference of every section and key with type, default and
 * description: the source of docs/config.md. */
void op_config_write_reference(FILE *out);

#endif
