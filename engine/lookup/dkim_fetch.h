/* The key records of one message's DKIM signatures, fetched through the
 * DNS service (dns.h: its cache, coalescing and timeouts) while the body
 * streams, and handed to the verifier (dkim_verify.h) as they arrive.
 *
 *   f = op_dkim_fetch_start(dns, msg)   at end of headers, after op_dkim_msg_eoh
 *   op_dkim_fetch_done(f)               every record is in (or failed)
 *   op_dkim_fetch_notify(f, cb, data)   cb(data) once when the last one
 *                                       comes (never if done already);
 *                                       cb NULL: no longer
 *   op_dkim_fetch_free(f)               cancels what is still on the way
 *                                       (the queries go on and fill the cache)
 *
 * A record that times out or meets SERVFAIL is set TEMPFAIL (the message
 * gets a 4xx), NXDOMAIN or NODATA is NONE; one failure costs only the
 * signatures of that key. */
#ifndef OP_DKIM_FETCH_H
#define OP_DKIM_FETCH_H

#include "lookup/dkim_verify.h"
#include "lookup/dns.h"

typedef struct op_dkim_fetch op_dkim_fetch_t;

op_dkim_fetch_t *op_dkim_fetch_start(op_dns_t *dns, op_dkim_msg_t *msg);
int op_dkim_fetch_done(const op_dkim_fetch_t *f);
void op_dkim_fetch_notify(op_dkim_fetch_t *f, void (*cb)(void *data), void *data);
void op_dkim_fetch_free(op_dkim_fetch_t *f);

#endif
