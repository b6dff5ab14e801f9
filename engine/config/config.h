/* The daemon configuration: the parsed tree of conf_parse.h checked against
 * a schema and turned into typed values.  Strict: an unknown key, a key in
 * the wrong section, a value of the wrong type, a duplicated key or a
 * reference to an undefined service is an error naming FILE:LINE (with a
 * "did you mean" hint for near misses).
 *
 * Relative paths in the file are relative to the directory of the file, so
 * the shipped conf/outpost.conf works from a checkout. */
#ifndef OP_CONFIG_H
#define OP_CONFIG_H

#include "config/conf_parse.h"

#include <stddef.h>
#include <stdio.h>

typedef enum {
    OP_LISTEN_UNIX,
    OP_LISTEN_TCP,
} op_listen_kind_t;

typedef enum {
    OP_PROTO_POLICY, /* Postfix policy delegation */
    OP_PROTO_MILTER, /* milter protocol version 6 */
} op_proto_t;

typedef struct {
    char *name;          /* listener NAME { } */
    const char *file;    /* where it was defined, for messages */
    int line;
    op_listen_kind_t kind;
    char *listen;        /* as written: "unix:PATH" or "tcp:HOST:PORT" */
    char *path;          /* unix: absolute socket path */
    char *host;          /* tcp: address literal, "[::1]" brackets removed */
    int port;            /* tcp */
    op_proto_t protocol;
    char *service;       /* default service of requests on this listener */
    char *tenant;        /* "" when not given */
    char **allow_context; /* services Postfix's policy_context may select */
    size_t nallow_context;
    int socket_mode;     /* unix: permission bits, default 0660 */
    char *socket_owner;  /* unix: user name, NULL = the daemon's user */
    char *socket_group;  /* unix: group name, NULL = the daemon's group */
} op_listener_conf_t;

typedef struct {
    char *name;           /* service NAME { } */
    const char *file;
    int line;
    char *policy;         /* absolute path of the policy file */
    double deadline;      /* seconds; default 10 */
    char *default_action; /* Postfix action text; default "451 4.3.5 ..." */
    char **checks;        /* "ID=MODE" */
    size_t nchecks;
    char **tenant_checks; /* "TENANT:ID=MODE" */
    size_t ntenant_checks;
} op_service_conf_t;

/* limit NAME { }: one rate limit of the counters service (counters.h). */
typedef struct {
    char *name;
    const char *file;
    int line;
    size_t max;           /* default maximum per subject in one window */
    double window;        /* seconds */
    double resolution;    /* seconds per bucket; divides window */
    size_t max_override;  /* highest maximum an override may set; 0 = max */
} op_limit_conf_t;

typedef struct {
    char *path;           /* absolute path of the config file */
    char *dir;            /* its directory */

    /* daemon { } */
    char *user;           /* NULL: keep the user we started as */
    char *group;
    char *state_dir;      /* absolute */
    char *lua_dir;        /* absolute; holds lib/ and policies/ */
    char *lists_dir;      /* absolute; the data lists (outpost.lists) */
    double drain_timeout; /* seconds SIGTERM waits for requests in flight */
    int log_level;        /* op_log_level_t */
    int log_decisions;    /* one line per request */
    size_t max_connections;
    double idle_timeout;  /* seconds a connection may stay silent */

    /* request_limits { } */
    size_t max_line;
    size_t max_attrs;
    size_t max_request;

    /* dns { } */
    char **dns_servers;   /* none: resolv.conf */
    size_t ndns_servers;
    double dns_timeout;
    size_t dns_tries;
    size_t dns_cache_size;
    double dns_max_ttl;
    double dns_negative_max_ttl;

    /* smtp_verify { } */
    char *smtp_helo;
    char *smtp_host;      /* NULL: the address's MX */
    size_t smtp_port;
    double smtp_connect_timeout;
    double smtp_step_timeout;
    double smtp_positive_ttl;
    double smtp_negative_ttl;
    double smtp_tempfail_ttl;
    size_t smtp_per_destination;
    size_t smtp_cache_size;

    op_listener_conf_t *listeners;
    size_t nlisteners;
    op_service_conf_t *services;
    size_t nservices;

    /* counters { } */
    char *counters_path;        /* RocksDB directory; NULL = <state_dir>/counters */
    double reservation_timeout; /* seconds an uncommitted reservation lives */
    int counters_sync;          /* fsync the WAL on every write */
    size_t counters_cache_entries; /* windows kept in memory */
    op_limit_conf_t *limits;
    size_t nlimits;

    /* control { } */
    char *control_socket;       /* NULL = <state_dir>/control.sock */
    int control_mode;
    char *control_group;        /* admin group, NULL = root and the daemon's user only */
    /* ldap { } (engine/lookup/ldap_service.c); no uris: no LDAP service */
    char **ldap_uris;
    size_t nldap_uris;
    char *ldap_bind_dn;            /* NULL: anonymous */
    char *ldap_bind_password_file; /* absolute */
    int ldap_starttls;
    char *ldap_ca_file;            /* absolute, NULL: the system's */
    size_t ldap_pool_size;
    double ldap_timeout;
    double ldap_connect_timeout;
    double ldap_reconnect_min;
    double ldap_reconnect_max;
    size_t ldap_size_limit;
    size_t ldap_cache_size;
    double ldap_cache_ttl;
    double ldap_negative_ttl;

    /* directory { } (lua/lib/directory.lua, through outpost.ldap.directory()) */
    char *dir_base;
    char *dir_user_filter;
    char *dir_address_filter;
    char *dir_domain_filter;
    char *dir_protected_filter;
    char *dir_function_filter;
    char **dir_sender_attrs;
    size_t ndir_sender_attrs;
    char *dir_limit_attr;
    char *dir_lock_attr;
    char *dir_networks_attr;
    char *dir_tenants_attr;
    size_t dir_default_limit;

    op_conf_node_t *root; /* the whole tree, for modules with sections of their own */
} op_config_t;

/* Loads, parses and validates.  Returns NULL with "FILE:LINE: message" in
 * err on any error. */
op_config_t *op_config_load(const char *path, char *err, size_t errlen);
void op_config_free(op_config_t *cfg);

const op_service_conf_t *op_config_service(const op_config_t *cfg, const char *name);

/* Markdown reference of every section and key with type, default and
 * description: the source of docs/config.md. */
void op_config_write_reference(FILE *out);

#endif
