/* counters { } and limit NAME { }: the sections of outpost.conf that
 * configure the counters service (counters.h), and op_counters_conf_t, the
 * settings it opens and reconfigures with. */
#ifndef OP_COUNTERS_CONFIG_H
#define OP_COUNTERS_CONFIG_H

#include "config/config.h"

#include <stddef.h>

/* limit NAME { }: one rate limit. */
typedef struct {
    char *name;
    const char *file;
    int line;
    size_t max;           /* default maximum per subject in one window */
    double window;        /* seconds */
    double resolution;    /* seconds per bucket; divides window */
    size_t max_override;  /* highest maximum an override may set; 0 = max */
    int on_error;         /* OP_LIMIT_ON_ERROR_*: what a request gets when the store fails */
    int backend;          /* 0: counters { backend }; else OP_COUNTERS_BACKEND_* + 1 */
} op_limit_conf_t;

enum { OP_LIMIT_ON_ERROR_DEFER, OP_LIMIT_ON_ERROR_ACCEPT };
enum { OP_COUNTERS_BACKEND_ROCKSDB, OP_COUNTERS_BACKEND_REDIS };

/* redis { }: the Redis server (or Sentinel-watched primary) of the Redis
 * backend (counters_redis.c). */
typedef struct {
    char **servers;             /* host:port, tried in turn */
    size_t nservers;
    char **sentinels;           /* host:port of Sentinels; with master_name */
    size_t nsentinels;
    char *master_name;
    char *prefix;               /* of every key */
    double connect_timeout;     /* seconds */
    double command_timeout;     /* seconds */
    double reconnect_max;       /* seconds */
    size_t db;
    char *password_file;
} op_redis_conf_t;

typedef struct {
    /* counters { } */
    char *path;                 /* RocksDB directory; NULL = <state_dir>/counters */
    double reservation_timeout; /* seconds an uncommitted reservation lives */
    int sync;                   /* fsync the WAL on every write */
    size_t cache_entries;       /* windows kept in memory */
    double write_timeout;       /* seconds a group write may take before the store is failing */
    int backend;                /* OP_COUNTERS_BACKEND_* */
    /* from elsewhere in the configuration */
    const char *state_dir;      /* daemon { state_dir } */
    const op_limit_conf_t *limits; /* the limit { } sections */
    size_t nlimits;
    const op_redis_conf_t *redis; /* redis { } */
} op_counters_conf_t;

extern const struct op_conf_section op_counters_section;
extern const struct op_conf_section op_limit_section;
extern const struct op_conf_section op_redis_section;

/* The counters' settings of cfg; they live as long as cfg. */
void op_counters_conf_of(const op_config_t *cfg, op_counters_conf_t *out);

#endif
