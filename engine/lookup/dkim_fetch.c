/* DKIM key records through the DNS service (dkim_fetch.h). */
#include "lookup/dkim_fetch.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    op_lookup_req_t req;
    op_dkim_fetch_t *f;
    size_t index;
    int pending;
} key_fetch_t;

struct op_dkim_fetch {
    op_dkim_msg_t *msg;
    size_t n, pending;
    key_fetch_t keys[OP_DKIM_MAX_SIGS];
    void (*cb)(void *data);
    void *data;
};

/* A key has one TXT record; when a name has several, the first that holds
 * a p= tag is the key (the others are not DKIM records). */
static void set_result(op_dkim_fetch_t *f, size_t i, const op_dns_result_t *res)
{
    switch (res->status) {
    case OP_DNS_OK:
        for (size_t k = 0; k < res->n; k++) {
            if (memmem(res->rr[k].text, res->rr[k].len, "p=", 2)) {
                op_dkim_msg_set_key(f->msg, i, OP_DKIM_KEY_OK, res->rr[k].text, res->rr[k].len);
                return;
            }
        }
        if (res->n > 0)
            op_dkim_msg_set_key(f->msg, i, OP_DKIM_KEY_OK, res->rr[0].text, res->rr[0].len);
        else
            op_dkim_msg_set_key(f->msg, i, OP_DKIM_KEY_NONE, NULL, 0);
        return;
    case OP_DNS_NXDOMAIN:
    case OP_DNS_NODATA:
    case OP_DNS_BADNAME:
        op_dkim_msg_set_key(f->msg, i, OP_DKIM_KEY_NONE, NULL, 0);
        return;
    default: /* SERVFAIL, REFUSED, TIMEOUT, FORMERR, CANCELLED: maybe later */
        op_dkim_msg_set_key(f->msg, i, OP_DKIM_KEY_TEMPFAIL, NULL, 0);
        return;
    }
}

static void key_done(op_lookup_req_t *req, const void *value)
{
    key_fetch_t *k = req->data;
    op_dkim_fetch_t *f = k->f;
    k->pending = 0;
    set_result(f, k->index, value);
    if (--f->pending == 0 && f->cb) {
        void (*cb)(void *) = f->cb;
        f->cb = NULL;
        cb(f->data);
    }
}

op_dkim_fetch_t *op_dkim_fetch_start(op_dns_t *dns, op_dkim_msg_t *msg)
{
    op_dkim_fetch_t *f = op_calloc(1, sizeof *f);
    f->msg = msg;
    for (const char *name; f->n < OP_DKIM_MAX_SIGS && (name = op_dkim_msg_key(msg, f->n)); f->n++) {
        key_fetch_t *k = &f->keys[f->n];
        k->f = f;
        k->index = f->n;
        k->req.data = k;
        int rc = dns ? op_dns_lookup(dns, &k->req, name, strlen(name), OP_DNS_TXT, key_done)
                     : OP_DNS_ESTOPPED;
        if (rc == OP_LOOKUP_STARTED) {
            k->pending = 1;
            f->pending++;
        } else if (rc == OP_LOOKUP_HIT) {
            set_result(f, f->n, k->req.value);
        } else if (rc == OP_DNS_EBADNAME) {
            op_dkim_msg_set_key(msg, f->n, OP_DKIM_KEY_NONE, NULL, 0);
        } else {
            op_dkim_msg_set_key(msg, f->n, OP_DKIM_KEY_TEMPFAIL, NULL, 0);
        }
    }
    return f;
}

int op_dkim_fetch_done(const op_dkim_fetch_t *f) { return f->pending == 0; }

void op_dkim_fetch_notify(op_dkim_fetch_t *f, void (*cb)(void *data), void *data)
{
    f->cb = cb;
    f->data = data;
}

void op_dkim_fetch_free(op_dkim_fetch_t *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->n; i++)
        if (f->keys[i].pending)
            op_lookup_cancel(&f->keys[i].req);
    free(f);
}
