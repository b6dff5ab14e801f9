/* The schema machinery: how a module describes its section of outpost.conf
 * (key rows with type, default and description) and registers it, so the
 * parser checks and converts the section into the module's own settings
 * struct.  config_sections.c lists the registered sections in the order
 * docs/config.md shows them; each module defines its op_conf_section_t
 * next to the code that uses the settings (engine/lookup/dns_config.c,
 * ...).  Internal to the config layer and the modules' *_config.c files. */
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
    F_INT = 1 << 5,       /* T_INTEGER stored in an int, not a size_t */
    F_TCP_ONLY = 1 << 6,  /* only in a listener on a tcp: socket */
};

typedef struct op__config_ctx ctx_t;

/* A key whose value is a template (config_template.c): what its caller
 * fills in, so a mistake is reported at the key's line when the file is
 * read, not by every request that uses it.  A row declares it with
 * .tmpl = OP_FILTER_TEMPLATE(1), or a literal for other kinds. */
enum { OP_TMPL_NO_TENANT, OP_TMPL_MAY_TENANT, OP_TMPL_NEEDS_TENANT };
typedef struct {
    unsigned args; /* the caller's arguments, %s (in order) or %1..%N; each must be used */
    int filter;    /* an RFC 4515 filter once filled (placeholders only in assertion values) */
    int tenant;    /* OP_TMPL_*: whether %t (the tenant) is unknown, allowed or required */
} op_conf_template_t;
#define OP_FILTER_TEMPLATE(n) (&(const op_conf_template_t){.args = (n), .filter = 1})
/* 0, or -1 with what is wrong with v (and where in it) in msg. */
int op__config_template_check(const op_conf_template_t *t, const char *v, char *msg, size_t msglen);

/* One key.  off (and count_off) locate the field in the section's struct;
 * in a section without a struct (size 0, not in_config) they are unused:
 * each key has a slot of its own (op_conf_slot_t). */
typedef struct {
    const char *key;
    vtype_t type;
    const char *def;      /* default, converted like a value from the file; T_LIST:
                           * "a, b" (an empty list given also means the default) */
    const char *doc_def;  /* the reference's default, when def says too little or is NULL */
    const char *doc_type; /* the reference's type when "type" says too little */
    const char *descr;
    unsigned flags;
    const char *values;   /* T_ENUM: allowed values, '|' separated */
    int (*code)(const char *value); /* T_ENUM: the number stored; NULL: the index */
    double lo, hi;        /* T_INTEGER, T_DURATION: range; hi 0 = none */
    size_t off;           /* of the field in the section's struct */
    size_t count_off;     /* T_LIST: of the element count */
    int (*check)(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj);
    const op_conf_template_t *tmpl; /* T_STRING: the value is a template of this kind */
} key_def_t;

/* A section a module registers.  The struct of a named section begins
 * with the fields of op_conf_item_t. */
typedef struct op_conf_section {
    const char *name;
    int named;      /* listener NAME { } */
    int repeatable;
    const char *descr;
    const key_def_t *keys;
    size_t nkeys;
    size_t size;    /* of the settings struct; 0: none, the values stay in slots */
    int in_config;  /* the fields are op_config_t's own (daemon { }, request_limits { }) */
    int lua;        /* handed to each generation: outpost.config()[name] */
    /* Rules across the keys of one block, run after it is converted. */
    int (*check)(ctx_t *c, const op_conf_node_t *block, const char *where, void *obj);
    /* Frees what check put into obj beyond the schema's fields. */
    void (*free)(void *obj);
    /* Rules against other sections, run once every section is read (the
     * listeners and services are in c->cfg): 0, or -1 from fail. */
    int (*finish)(ctx_t *c);
    /* What a start needs of the machine for this section's keys (users,
     * files, directories), run by `outpostd --check` through
     * op_config_preflight (config_host.c), never on a reload: 0, or -1
     * from fail at the key's line (op__config_key_node). */
    int (*preflight)(ctx_t *c);
} op_conf_section_t;

/* The head of every named section's struct. */
typedef struct {
    char *name;
    const char *file;
    int line;
} op_conf_item_t;

/* The value of a key of a section without a struct. */
typedef struct {
    union {
        char *s;
        char **list;
        int i;
        size_t n;
        double d;
    } v;
    size_t count; /* T_LIST */
} op_conf_slot_t;

#define OP__CONFIG_MAX_KEYS 64 /* per section */

/* The registry (config_sections.c), in the reference's order. */
extern const op_conf_section_t *const op__config_sections[];
extern const size_t op__config_nsections;

/* The sections config.c itself relies on. */
extern const op_conf_section_t op_listener_section; /* core/listener_config.c */
extern const op_conf_section_t op_service_section;  /* core/service_config.c */

/* The state of one load (config.c). */
struct op__config_ctx {
    op_config_t *cfg;
    char *err;
    size_t errlen;
    const op_conf_node_t **nodes[OP_CONFIG_MAX_SECTIONS]; /* named sections: the block of each item */
};

/* Writes "FILE:LINE: WHERE: message" into the load's error and returns -1. */
int op__config_fail(ctx_t *c, const op_conf_node_t *at, const char *where, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* value as an absolute path: relative ones are relative to dir. */
char *op__config_abs_path(const char *dir, const char *value);
/* " (did you mean 'X'?)" for the closest of cands within distance 2, or "". */
const char *op__config_suggest(const char *word, const char *const *cands, size_t n, char *buf,
                               size_t len);
int op__config_valid_name(const char *s);
const op_conf_node_t *op__config_find_child(const op_conf_node_t *block, const char *key);
const key_def_t *op__config_find_key(const op_conf_section_t *sec, const char *key);
/* The blocks of the items of a named section, in the order of the items. */
const op_conf_node_t *const *op__config_nodes(ctx_t *c, const op_conf_section_t *sec);
/* "service 'X' is not defined (did you mean ...)" at at; returns -1. */
int op__config_undefined_service(ctx_t *c, const op_conf_node_t *at, const char *where,
                                 const char *name);

/* The field of key k in obj, a struct of section sec (or its slots). */
void *op__config_field(const op_conf_section_t *sec, const key_def_t *k, void *obj);
size_t *op__config_count(const op_conf_section_t *sec, const key_def_t *k, void *obj);

/* config_values.c: one value from the file into its field. */
int op__config_convert_scalar(ctx_t *c, const op_conf_section_t *sec, const key_def_t *k,
                              const op_conf_node_t *at, const char *where, const char *v, void *obj);
int op__config_convert_list(ctx_t *c, const op_conf_section_t *sec, const key_def_t *k,
                            const op_conf_node_t *list, const char *where, void *obj);
/* A list's default ("a, b" in the row) into its field. */
void op__config_convert_default_list(const op_conf_section_t *sec, const key_def_t *k, void *obj);
extern const char *const op__config_type_names[];
/* "debug, info, notice" from "debug|info|notice". */
const char *op__config_enum_list(const char *values, char *buf, size_t len);

/* config_host.c: helpers of the sections' preflight rules. */
typedef struct {
    unsigned uid, gid; /* the daemon's, after the start */
    int set;           /* daemon { user/group } given */
    int changes;       /* set, and this process may become them (root) */
} op_conf_identity_t;
/* The node of key in the item-th block of section (or the block, or the
 * file's root when the key or the block is absent: a default). */
const op_conf_node_t *op__config_key_node(const op_config_t *cfg, const char *section, size_t item,
                                          const char *key);
/* The daemon's user and group as the start resolves them; -1 when one
 * does not exist. */
int op__config_identity(const op_config_t *cfg, op_conf_identity_t *id);
/* 0 when the daemon's user may access(2) path with mode, else an errno. */
int op__config_access_as(const op_config_t *cfg, const char *path, int mode);
/* dir exists as a directory, or the start can create it (mkdir -p as the
 * user it is started by); else fail's -1.  what names the key. */
int op__config_creatable_dir(ctx_t *c, const op_conf_node_t *at, const char *where, const char *what,
                             const char *dir);
int op__daemon_preflight(ctx_t *c);

/* daemon { log_level }: the op_log_level_t of a name the row lists. */
int op__config_log_level_code(const char *v);
int op__config_lua_jit_code(const char *v);

#define OP_CONF_ROWS(a) (a), (sizeof(a) / sizeof((a)[0]))

#endif
