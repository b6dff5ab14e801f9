/* The LDAP service's connections: connect and bind on the thread pool
 * (libldap's connect, StartTLS and TLS handshakes block), then searches and
 * their results on the loop, with the socket watched by uv_poll. */
#include "lookup/ldap_conn.h"

#include "core/log.h"
#include "core/mem.h"

#include <math.h>
#include <string.h>

struct op__ldap_job {
    char **uris;
    size_t nuris;
    char *bind_dn;
    char *password;
    int starttls;
    char *ca_file;
    double timeout;
    /* results */
    LDAP *ld;
    size_t uri_used;
    char err[512];
};

static struct timeval to_tv(double s)
{
    struct timeval tv;
    tv.tv_sec = (time_t)s;
    tv.tv_usec = (suseconds_t)((s - (double)tv.tv_sec) * 1e6);
    return tv;
}

static void job_free(op__ldap_job_t *j)
{
    for (size_t i = 0; i < j->nuris; i++)
        free(j->uris[i]);
    free(j->uris);
    free(j->bind_dn);
    if (j->password != NULL) {
        memset(j->password, 0, strlen(j->password));
        free(j->password);
    }
    free(j->ca_file);
    free(j);
}

/* Waits for the answer to msgid within tv; returns the LDAP result code. */
static int wait_result(LDAP *ld, int msgid, struct timeval tv, LDAPMessage **res)
{
    int rc = ldap_result(ld, msgid, LDAP_MSG_ALL, &tv, res);
    if (rc == 0)
        return LDAP_TIMEOUT;
    if (rc < 0) {
        int e = LDAP_SERVER_DOWN;
        ldap_get_option(ld, LDAP_OPT_RESULT_CODE, &e);
        return e;
    }
    return LDAP_SUCCESS;
}

/* One server: connect, StartTLS if asked, bind.  Runs on the thread pool. */
static LDAP *job_try(op__ldap_job_t *j, const char *uri)
{
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, uri);
    if (rc != LDAP_SUCCESS) {
        snprintf(j->err, sizeof j->err, "%s: %s", uri, ldap_err2string(rc));
        return NULL;
    }
    int v3 = LDAP_VERSION3;
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &v3);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    struct timeval tv = to_tv(j->timeout);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &tv);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &tv);
    if (j->ca_file != NULL) {
        int demand = LDAP_OPT_X_TLS_DEMAND, zero = 0;
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, j->ca_file);
        ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &demand);
        ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);
    }
    LDAPMessage *res = NULL;
    int msgid;
    if (j->starttls && strncmp(uri, "ldaps:", 6) != 0) {
        rc = ldap_start_tls(ld, NULL, NULL, &msgid);
        if (rc == LDAP_SUCCESS)
            rc = wait_result(ld, msgid, tv, &res);
        if (rc == LDAP_SUCCESS) {
            int code = LDAP_OTHER;
            rc = ldap_parse_result(ld, res, &code, NULL, NULL, NULL, NULL, 1);
            res = NULL;
            if (rc == LDAP_SUCCESS)
                rc = code;
        }
        if (rc == LDAP_SUCCESS)
            rc = ldap_install_tls(ld);
        if (rc != LDAP_SUCCESS) {
            snprintf(j->err, sizeof j->err, "%s: StartTLS: %s", uri, ldap_err2string(rc));
            ldap_unbind_ext(ld, NULL, NULL);
            return NULL;
        }
    }
    /* Always bind (anonymously without bind_dn): ldap_initialize does not
     * connect, and the bind proves the server answers. */
    struct berval cred = {0, NULL};
    if (j->password != NULL) {
        cred.bv_val = j->password;
        cred.bv_len = strlen(j->password);
    }
    rc = ldap_sasl_bind(ld, j->bind_dn != NULL ? j->bind_dn : "", LDAP_SASL_SIMPLE, &cred, NULL, NULL,
                        &msgid);
    if (rc == LDAP_SUCCESS)
        rc = wait_result(ld, msgid, tv, &res);
    if (rc == LDAP_SUCCESS) {
        int code = LDAP_OTHER;
        rc = ldap_parse_result(ld, res, &code, NULL, NULL, NULL, NULL, 1);
        if (rc == LDAP_SUCCESS)
            rc = code;
    }
    if (rc != LDAP_SUCCESS) {
        snprintf(j->err, sizeof j->err, "%s: bind%s%s: %s", uri, j->bind_dn ? " as " : "",
                 j->bind_dn ? j->bind_dn : "", ldap_err2string(rc));
        ldap_unbind_ext(ld, NULL, NULL);
        return NULL;
    }
    return ld;
}

static void job_work(uv_work_t *w)
{
    op__ldap_conn_t *c = w->data;
    op__ldap_job_t *j = c->job;
    for (size_t i = 0; i < j->nuris && j->ld == NULL; i++) {
        j->ld = job_try(j, j->uris[i]);
        j->uri_used = i;
    }
}

static void on_retry(uv_timer_t *t);

static void retry_later(op__ldap_conn_t *c)
{
    op_ldap_t *l = c->l;
    double d = l->conf.reconnect_min;
    for (unsigned i = 1; i < c->fails && d < l->conf.reconnect_max; i++)
        d *= 2;
    if (d > l->conf.reconnect_max)
        d = l->conf.reconnect_max;
    c->state = OP__LDAP_WAIT;
    uv_timer_start(&c->retry, on_retry, (uint64_t)ceil(d * 1000.0), 0);
}

static void on_poll(uv_poll_t *p, int status, int events);

static void after_job(uv_work_t *w, int status)
{
    op__ldap_conn_t *c = w->data;
    op_ldap_t *l = c->l;
    op__ldap_job_t *j = c->job;
    c->job = NULL;
    l->holds--;
    (void)status;
    if (l->stopping || c->epoch != l->epoch) {
        if (j->ld != NULL)
            ldap_unbind_ext(j->ld, NULL, NULL);
        job_free(j);
        if (l->stopping) {
            c->state = OP__LDAP_STOPPED;
            op__ldap_maybe_free(l);
        } else {
            op__ldap_conn_connect(c); /* with the new settings */
        }
        return;
    }
    if (j->ld == NULL) {
        l->stats.connect_failures++;
        if (c->fails++ == 0)
            op_warn("ldap: connection %zu: no server answers: %s", c->index, j->err);
        job_free(j);
        retry_later(c);
        if (!op__ldap_hopeful(l))
            op__ldap_fail_queue(l);
        return;
    }
    int fd = -1;
    if (ldap_get_option(j->ld, LDAP_OPT_DESC, &fd) != LDAP_OPT_SUCCESS || fd < 0 ||
        uv_poll_init(l->loop, &c->poll, fd) != 0) {
        op_warn("ldap: connection %zu: no socket to watch", c->index);
        ldap_unbind_ext(j->ld, NULL, NULL);
        job_free(j);
        c->fails++;
        retry_later(c);
        if (!op__ldap_hopeful(l))
            op__ldap_fail_queue(l);
        return;
    }
    Sockbuf *sb = NULL;
    if (ldap_get_option(j->ld, LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS && sb != NULL)
        ber_sockbuf_ctrl(sb, LBER_SB_OPT_SET_NONBLOCK, (void *)1);
    l->holds++;
    c->poll.data = c;
    uv_poll_start(&c->poll, UV_READABLE, on_poll);
    /* Connections alone do not keep the daemon running: it stops when its
     * requests are done, then stops the services. */
    uv_unref((uv_handle_t *)&c->poll);
    c->ld = j->ld;
    snprintf(c->uri, sizeof c->uri, "%s", j->uris[j->uri_used]);
    c->state = OP__LDAP_READY;
    l->stats.connects++;
    if (c->fails > 0)
        op_notice("ldap: connection %zu: up again, to %s", c->index, j->uris[j->uri_used]);
    else
        op_info("ldap: connection %zu: up, to %s", c->index, j->uris[j->uri_used]);
    c->fails = 0;
    job_free(j);
    op__ldap_dispatch(l);
}

static char *dup_or_null(const char *s)
{
    return s != NULL ? op_strdup(s) : NULL;
}

void op__ldap_conn_connect(op__ldap_conn_t *c)
{
    op_ldap_t *l = c->l;
    const op__ldap_conf_t *cf = &l->conf;
    op__ldap_job_t *j = op_calloc(1, sizeof *j);
    j->uris = op_calloc(cf->nuris, sizeof *j->uris);
    for (size_t i = 0; i < cf->nuris; i++)
        j->uris[i] = op_strdup(cf->uris[i]);
    j->nuris = cf->nuris;
    j->bind_dn = dup_or_null(cf->bind_dn);
    j->password = dup_or_null(cf->password);
    j->starttls = cf->starttls;
    j->ca_file = dup_or_null(cf->ca_file);
    j->timeout = cf->connect_timeout;
    c->job = j;
    c->epoch = l->epoch;
    c->state = OP__LDAP_CONNECTING;
    c->work.data = c;
    if (uv_queue_work(l->loop, &c->work, job_work, after_job) != 0) {
        c->job = NULL;
        job_free(j);
        c->fails++;
        retry_later(c);
        return;
    }
    l->holds++;
}

static void on_retry(uv_timer_t *t)
{
    op__ldap_conn_t *c = t->data;
    if (c->l->stopping)
        return;
    if (c->state == OP__LDAP_WAIT)
        op__ldap_conn_connect(c);
    else if (c->state == OP__LDAP_READY)
        op__ldap_conn_fail(c, "cannot send a search");
}

void op__ldap_conn_fail_soon(op__ldap_conn_t *c)
{
    uv_timer_start(&c->retry, on_retry, 0, 0);
}

void op__ldap_conn_init(op_ldap_t *l, op__ldap_conn_t *c)
{
    c->l = l;
    c->index = (size_t)(c - l->conns);
    c->state = OP__LDAP_WAIT;
    uv_timer_init(l->loop, &c->retry);
    uv_unref((uv_handle_t *)&c->retry);
    c->retry.data = c;
    l->holds++;
}

static op_ldap_status_t map_code(int code)
{
    switch (code) {
    case LDAP_SUCCESS:
        return OP_LDAP_OK;
    case LDAP_NO_SUCH_OBJECT:
        return OP_LDAP_NOSUCHOBJECT;
    case LDAP_SIZELIMIT_EXCEEDED:
    case LDAP_ADMINLIMIT_EXCEEDED:
        return OP_LDAP_SIZELIMIT;
    case LDAP_TIMELIMIT_EXCEEDED:
    case LDAP_TIMEOUT:
        return OP_LDAP_TIMEOUT;
    case LDAP_FILTER_ERROR:
    case LDAP_INVALID_DN_SYNTAX:
    case LDAP_PROTOCOL_ERROR:
    case LDAP_UNDEFINED_TYPE:
    case LDAP_INAPPROPRIATE_MATCHING:
    case LDAP_INVALID_SYNTAX:
    case LDAP_PARAM_ERROR:
        return OP_LDAP_INVALID;
    default:
        return OP_LDAP_UNAVAILABLE;
    }
}

/* Takes f off c's list. */
static void unlink_sent(op__ldap_conn_t *c, op__ldap_flight_t *f)
{
    op__ldap_flight_t **p = &c->sent;
    while (*p != NULL && *p != f)
        p = &(*p)->next;
    if (*p == f) {
        *p = f->next;
        c->nsent--;
    }
    f->next = NULL;
    f->conn = NULL;
}

static op__ldap_flight_t *find_sent(op__ldap_conn_t *c, int msgid)
{
    for (op__ldap_flight_t *f = c->sent; f != NULL; f = f->next)
        if (f->msgid == msgid)
            return f;
    return NULL;
}

/* After the last search of a connection whose settings are old. */
static void maybe_refresh(op__ldap_conn_t *c)
{
    if (c->state == OP__LDAP_READY && c->epoch != c->l->epoch && c->nsent == 0)
        op__ldap_conn_fail(c, NULL);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    op__ldap_conn_t *c = p->data;
    (void)events;
    if (status < 0) {
        op__ldap_conn_fail(c, uv_strerror(status));
        return;
    }
    /* Bounded: a server that streams entries cannot hold the loop. */
    for (int n = 0; n < 4096 && c->state == OP__LDAP_READY; n++) {
        struct timeval zero = {0, 0};
        LDAPMessage *msg = NULL;
        int rc = ldap_result(c->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);
        if (rc == 0)
            return;
        if (rc < 0) {
            op__ldap_conn_fail(c, "connection lost");
            return;
        }
        op__ldap_flight_t *f = find_sent(c, ldap_msgid(msg));
        if (f == NULL) {
            ldap_msgfree(msg); /* of an abandoned search */
            continue;
        }
        if (rc == LDAP_RES_SEARCH_ENTRY) {
            if (f->nentries < c->l->conf.size_limit)
                op__ldap_flight_add_entry(f, c->ld, msg);
            ldap_msgfree(msg);
        } else if (rc == LDAP_RES_SEARCH_RESULT) {
            int code = LDAP_OTHER;
            if (ldap_parse_result(c->ld, msg, &code, NULL, NULL, NULL, NULL, 1) != LDAP_SUCCESS)
                code = LDAP_OTHER;
            unlink_sent(c, f);
            op__ldap_flight_finish(f, map_code(code));
            maybe_refresh(c);
        } else {
            ldap_msgfree(msg); /* references: not followed */
        }
    }
}

int op__ldap_conn_send(op__ldap_conn_t *c, const char *base, int scope, const char *filter,
                       char **attrs, double timeout, int *msgid)
{
    static const int scopes[] = {LDAP_SCOPE_BASE, LDAP_SCOPE_ONELEVEL, LDAP_SCOPE_SUBTREE};
    struct timeval tl = {(time_t)ceil(timeout), 0};
    return ldap_search_ext(c->ld, base, scopes[scope], filter, attrs, 0, NULL, NULL, &tl,
                           (int)c->l->conf.size_limit, msgid);
}

void op__ldap_conn_abandon(op__ldap_conn_t *c, op__ldap_flight_t *f)
{
    int msgid = f->msgid;
    unlink_sent(c, f);
    if (c->state == OP__LDAP_READY)
        ldap_abandon_ext(c->ld, msgid, NULL, NULL);
    maybe_refresh(c);
}

static void on_poll_closed(uv_handle_t *h)
{
    op__ldap_conn_t *c = h->data;
    op_ldap_t *l = c->l;
    ldap_unbind_ext(c->ld, NULL, NULL);
    c->ld = NULL;
    l->holds--;
    if (l->stopping) {
        c->state = OP__LDAP_STOPPED;
        op__ldap_maybe_free(l);
        return;
    }
    if (c->epoch != l->epoch) {
        op__ldap_conn_connect(c);
        return;
    }
    c->fails = 1; /* the first retry comes after reconnect_min */
    retry_later(c);
    if (!op__ldap_hopeful(l))
        op__ldap_fail_queue(l);
}

/* Closes a connection; its searches answer unavailable.  why NULL: not a
 * failure, the settings changed. */
void op__ldap_conn_fail(op__ldap_conn_t *c, const char *why)
{
    if (c->state != OP__LDAP_READY)
        return;
    if (why != NULL)
        op_warn("ldap: connection %zu to %s: %s", c->index, c->uri, why);
    c->state = OP__LDAP_CLOSING;
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_poll_closed);
    while (c->sent != NULL) {
        op__ldap_flight_t *f = c->sent;
        unlink_sent(c, f);
        op__ldap_flight_finish(f, OP_LDAP_UNAVAILABLE);
    }
}

void op__ldap_conn_refresh(op__ldap_conn_t *c)
{
    if (c->state == OP__LDAP_WAIT) {
        uv_timer_stop(&c->retry);
        op__ldap_conn_connect(c);
    } else {
        maybe_refresh(c); /* CONNECTING: after_job sees the old epoch */
    }
}

static void on_retry_closed(uv_handle_t *h)
{
    op__ldap_conn_t *c = h->data;
    c->l->holds--;
    op__ldap_maybe_free(c->l);
}

void op__ldap_conn_stop(op__ldap_conn_t *c)
{
    uv_timer_stop(&c->retry);
    uv_close((uv_handle_t *)&c->retry, on_retry_closed);
    if (c->state == OP__LDAP_READY)
        op__ldap_conn_fail(c, NULL);
    else if (c->state == OP__LDAP_WAIT)
        c->state = OP__LDAP_STOPPED;
}
