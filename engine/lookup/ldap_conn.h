/* Internal to the LDAP service (ldap_service.c, ldap_conn.c, ldap_settings.c): the service's state,
 * its connections and its settings.  Not for other modules. */
#ifndef OP_LDAP_CONN_H
#define OP_LDAP_CONN_H

#include "lookup/ldap_service.h"
#include "lookup/cache.h"

#include <ldap.h>

typedef struct op__ldap_flight op__ldap_flight_t;
typedef struct op__ldap_job op__ldap_job_t;

typedef enum {
    OP__LDAP_WAIT,       /* down; the retry timer will start a connect */
    OP__LDAP_CONNECTING, /* connect + bind runs on the thread pool */
    OP__LDAP_READY,
    OP__LDAP_CLOSING,    /* poll handle closing; unbound in its close callback */
    OP__LDAP_STOPPED,
} op__ldap_conn_state_t;

typedef struct op__ldap_conn {
    op_ldap_t *l;
    size_t index;
    op__ldap_conn_state_t state;
    unsigned epoch;      /* settings it connected with */
    LDAP *ld;
    char uri[256];       /* the one it is connected to, for logs */
    uv_poll_t poll;
    uv_timer_t retry;
    uv_work_t work;
    op__ldap_job_t *job; /* while CONNECTING */
    op__ldap_flight_t *sent;
    size_t nsent;
    unsigned fails;      /* connect failures in a row */
} op__ldap_conn_t;

/* The servers and how to reach them; copied into each connect job, so the
 * thread pool never reads what a reload may free. */
typedef struct {
    char **uris;
    size_t nuris;
    char *bind_dn;
    char *password;
    int starttls;
    char *ca_file;
    double connect_timeout;
    double timeout;
    double reconnect_min, reconnect_max;
    size_t size_limit;
    double cache_ttl, negative_ttl;
} op__ldap_conf_t;

struct op_ldap {
    uv_loop_t *loop;
    op__ldap_conf_t conf;
    unsigned epoch;        /* bumped when servers or bind change */
    op__ldap_conn_t *conns;
    size_t nconns;
    op__ldap_flight_t *queue; /* waiting for a connection, FIFO */
    op_cache_t *cache;        /* search key -> op_ldap_result_t; flights: op__ldap_flight_t */
    op_ldap_req_t *waiting, *waiting_last; /* started searches, by deadline */
    uv_timer_t deadline;      /* for the first of them */
    op_ldap_stats_t stats;
    int holds;             /* open handles and connect jobs; freed at 0 once stopping */
    int stopping;
};

/* A search in flight: one server request for one flight of the cache,
 * which holds its waiters (coalescing).  Queued while no connection is up,
 * then sent on one connection. */
struct op__ldap_flight {
    op_ldap_t *l;
    op_cache_flight_t *cf;
    char *base;
    int scope;
    char *filter;
    char **attrs; /* NULL-terminated, or NULL */
    int no_cache;
    double timeout;
    struct op__ldap_conn *conn; /* NULL while queued */
    int msgid;
    op__ldap_flight_t *next; /* in the queue or the connection's list */
    op_ldap_entry_t *entries;
    size_t nentries, cap;
};

/* ldap_service.c */
void op__ldap_flight_finish(op__ldap_flight_t *f, op_ldap_status_t status);
void op__ldap_flight_add_entry(op__ldap_flight_t *f, LDAP *ld, LDAPMessage *msg);
void op__ldap_dispatch(op_ldap_t *l);
void op__ldap_fail_queue(op_ldap_t *l);
int op__ldap_hopeful(const op_ldap_t *l);
void op__ldap_maybe_free(op_ldap_t *l);

/* ldap_conn.c */
void op__ldap_conn_init(op_ldap_t *l, op__ldap_conn_t *c);
void op__ldap_conn_connect(op__ldap_conn_t *c);
int op__ldap_conn_send(op__ldap_conn_t *c, const char *base, int scope, const char *filter,
                       char **attrs, double timeout, int *msgid);
void op__ldap_conn_abandon(op__ldap_conn_t *c, op__ldap_flight_t *f);
void op__ldap_conn_fail(op__ldap_conn_t *c, const char *why);
/* From the next loop iteration: a send failed inside a caller's call. */
void op__ldap_conn_fail_soon(op__ldap_conn_t *c);
void op__ldap_conn_refresh(op__ldap_conn_t *c);
void op__ldap_conn_stop(op__ldap_conn_t *c);

/* ldap_settings.c */
int op__ldap_settings_load(op_ldap_t *l, const op_config_t *cfg, char *err, size_t errlen);
int op__ldap_settings_reload(op_ldap_t *l, const op_config_t *cfg, int *servers_changed, char *err,
                             size_t errlen);
void op__ldap_settings_free(op_ldap_t *l);

#endif
