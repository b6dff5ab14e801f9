/* The DNS service's c-ares channels on the libuv loop (dns_chan.h): the
 * sockets c-ares opens are watched with uv_poll, its timeouts with one
 * uv_timer.  Settings that need a new channel (servers, timeout, tries)
 * take effect by making a new channel for new queries; the old one retires
 * when its last query ends, so a reload cancels nothing. */
#include "lookup/dns_chan.h"

#include "core/log.h"
#include "core/mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct op__dns_poll {
    uv_poll_t h;
    ares_socket_t fd;
    op__dns_poll_t *next;
    op_dns_t *dns;
};

static void poll_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    op__dns_poll_t *p = h->data;
    op_dns_t *dns = p->dns;
    ares_socket_t fd = p->fd;
    ares_socket_t r = (status < 0 || (events & UV_READABLE)) ? fd : ARES_SOCKET_BAD;
    ares_socket_t w = (status < 0 || (events & UV_WRITABLE)) ? fd : ARES_SOCKET_BAD;
    /* The socket belongs to one channel; the other just checks its timeouts. */
    ares_process_fd(dns->cur->ch, r, w);
    if (dns->old != NULL)
        ares_process_fd(dns->old->ch, r, w);
    op__dns_chan_retire_old(dns);
    op__dns_chan_arm(dns);
}

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    op_dns_t *dns = data;
    op__dns_poll_t **pp = &dns->polls;
    while (*pp != NULL && (*pp)->fd != fd)
        pp = &(*pp)->next;
    op__dns_poll_t *p = *pp;
    if (!readable && !writable) {
        if (p != NULL) {
            *pp = p->next;
            uv_poll_stop(&p->h);
            uv_close((uv_handle_t *)&p->h, poll_closed);
        }
        return;
    }
    if (p == NULL) {
        p = op_calloc(1, sizeof *p);
        p->fd = fd;
        p->dns = dns;
        p->h.data = p;
        if (uv_poll_init_socket(dns->loop, &p->h, fd) != 0) {
            op_error("dns: cannot watch socket %d", (int)fd);
            free(p);
            return;
        }
        p->next = dns->polls;
        dns->polls = p;
    }
    uv_poll_start(&p->h, (readable ? UV_READABLE : 0) | (writable ? UV_WRITABLE : 0), on_poll);
}

static uint64_t chan_timeout_ms(op__dns_chan_t *c, uint64_t best)
{
    struct timeval tv;
    struct timeval *t = ares_timeout(c->ch, NULL, &tv);
    if (t == NULL)
        return best;
    uint64_t ms = (uint64_t)t->tv_sec * 1000 + ((uint64_t)t->tv_usec + 999) / 1000;
    return ms < best ? ms : best;
}

static void on_timer(uv_timer_t *t)
{
    op_dns_t *dns = t->data;
    op__dns_budget_expire(dns);
    ares_process_fd(dns->cur->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    if (dns->old != NULL)
        ares_process_fd(dns->old->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    op__dns_chan_retire_old(dns);
    op__dns_chan_arm(dns);
}

void op__dns_chan_arm(op_dns_t *dns)
{
    if (dns->closing)
        return;
    uint64_t ms = chan_timeout_ms(dns->cur, UINT64_MAX);
    if (dns->old != NULL)
        ms = chan_timeout_ms(dns->old, ms);
    uint64_t budget = op__dns_budget_next(dns);
    if (budget < ms)
        ms = budget;
    if (ms == UINT64_MAX)
        uv_timer_stop(&dns->timer);
    else
        uv_timer_start(&dns->timer, on_timer, ms, 0);
}

op__dns_chan_t *op__dns_chan_new(op_dns_t *dns, const char *csv, int timeout_ms, int tries,
                                 char *err, size_t errlen)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    /* NOCHECKRESP: hand SERVFAIL and REFUSED answers to us instead of
     * trying the next server and ending with "connection refused", so the
     * policy learns what the server said. */
    o.flags = ARES_FLAG_NOCHECKRESP;
    o.timeout = timeout_ms;
    o.tries = tries;
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = dns;
    op__dns_chan_t *c = op_calloc(1, sizeof *c);
    c->dns = dns;
    int rc = ares_init_options(&c->ch, &o,
                               ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES |
                                   ARES_OPT_SOCK_STATE_CB);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: cannot start the resolver: %s", ares_strerror(rc));
        free(c);
        return NULL;
    }
    if (csv[0] != '\0' && (rc = ares_set_servers_ports_csv(c->ch, csv)) != ARES_SUCCESS) {
        snprintf(err, errlen, "dns: servers '%s': %s", csv, ares_strerror(rc));
        ares_destroy(c->ch);
        free(c);
        return NULL;
    }
    return c;
}

void op__dns_chan_free(op__dns_chan_t *c)
{
    ares_destroy(c->ch);
    free(c);
}

/* Outside c-ares callbacks only: a channel may not be destroyed from its own. */
void op__dns_chan_retire_old(op_dns_t *dns)
{
    if (dns->old != NULL && dns->old->inflight == 0) {
        op__dns_chan_t *c = dns->old;
        dns->old = NULL;
        op__dns_chan_free(c);
    }
}
