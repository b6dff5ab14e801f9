/* The configuration schema: every section and key outpost.conf accepts,
 * with type, default and description.  Internal to config.c and
 * config_schema.c; a module with settings of its own adds its section and
 * keys to the tables in config_schema.c and its fields to op_config_t. */
#ifndef OP_CONFIG_SCHEMA_H
#define OP_CONFIG_SCHEMA_H

#include "config/config.h"

#include <stddef.h>

typedef enum {
    T_STRING,
    T_PATH,     /* relative to the config file's directory */
    T_BOOL,
    T_INTEGER,  /* k and M suffixes multiply by 1024 */
    T_DURATION, /* stored as seconds */
    T_MODE,     /* always octal */
    T_ENUM,
    T_LIST,     /* of strings */
} vtype_t;

enum {
    F_REQUIRED = 1 << 0,
    F_NONEMPTY = 1 << 1,
    F_NAME = 1 << 2,      /* a listener or service name (each element of a list) */
    F_UNIX_ONLY = 1 << 3, /* only in a listener on a unix: socket */
    F_ABOVE_LO = 1 << 4,  /* the value must be > lo, not >= lo */
};

typedef struct op__config_ctx ctx_t;

typedef struct {
    const char *section;
    const char *key;
    vtype_t type;
    const char *def;      /* default, converted like a value from the file */
    const char *doc_def;  /* the reference's default when def is NULL */
    const char *doc_type; /* the reference's type when "type" says too little */
    const char *descr;
    unsigned flags;
    const char *values;   /* T_ENUM: allowed values, '|' separated */
    int (*code)(const char *value); /* T_ENUM: the number stored; NULL: the index */
    double lo, hi;        /* T_INTEGER, T_DURATION: range; hi 0 = none */
    size_t off;           /* of the field in op_config_t or the item struct */
    size_t count_off;     /* T_LIST: of the element count */
    int (*check)(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj);
} key_def_t;

typedef struct {
    const char *name;
    int named;      /* listener NAME { } */
    int repeatable;
    const char *descr;
} section_def_t;


#define OP__CONFIG_MAX_KEYS 256
#define OP__CONFIG_MAX_SECTIONS 32

extern const section_def_t op__config_sections[];
extern const size_t op__config_nsections;
extern const key_def_t op__config_schema[];
extern const size_t op__config_nkeys;

/* The state of one load (config.c). */
struct op__config_ctx {
    op_config_t *cfg;
    char *err;
    size_t errlen;
    const op_conf_node_t **lnodes; /* the block of each listener */
    const op_conf_node_t **snodes; /* the block of each service */
};

/* Writes "FILE:LINE: WHERE: message" into the load's error and returns -1. */
int op__config_fail(ctx_t *c, const op_conf_node_t *at, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* value as an absolute path: relative ones are relative to dir. */
char *op__config_abs_path(const char *dir, const char *value);

/* Checks and conversions the tables point to (config.c, config_checks.c). */
int op__config_log_level_code(const char *v);
int op__config_check_listen(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj);
int op__config_check_action(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj);
int op__config_check_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj);
int op__config_check_tenant_modes(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj);
int op__config_check_dns_servers(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj);

#endif
