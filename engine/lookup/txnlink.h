/* Transaction links: what one protocol learned about a mail transaction,
 * for another protocol's handler of the same transaction to read.
 *
 * The policy service and the milter of one Postfix see the same SMTP
 * transaction through different doors and name it differently (the policy
 * has `instance`, the milter has the queue id only from DATA on, both know
 * the client and sender).  This table knows nothing of either: an entry is
 * a small set of name=value fields reachable under several keys (aliases).
 * A writer names every key it knows; the entry any of them already names is
 * the one written, and afterwards every key names it.  So a first RCPT
 * written under {instance, envelope} and a later one under {instance,
 * queue id} land in one entry that a reader finds by queue id or envelope.
 *
 * Bounded: at most max_entries entries of at most OP_TXNLINK_MAX_FIELDS
 * fields and OP_TXNLINK_MAX_KEYS keys; keys and values are cut at
 * OP_TXNLINK_MAX_LEN bytes.  An entry not written for ttl_ms is gone, and
 * when the table is full the least recently written goes first.  Nothing
 * here waits or does I/O; the caller passes the time. */
#ifndef OP_TXNLINK_H
#define OP_TXNLINK_H

#include <stddef.h>
#include <stdint.h>

#define OP_TXNLINK_MAX_FIELDS 64
#define OP_TXNLINK_MAX_KEYS 8
#define OP_TXNLINK_MAX_LEN 1024
/* The daemon's table (services.c): a transaction lasts seconds to minutes;
 * 65,536 open ones is far more than max_connections allows at once. */
#define OP_TXNLINK_ENTRIES 65536
#define OP_TXNLINK_TTL_MS (15 * 60 * 1000)

typedef struct op_txnlink op_txnlink_t;

typedef struct {
    const char *name, *value;
} op_txnlink_field_t;

op_txnlink_t *op_txnlink_new(size_t max_entries, uint64_t ttl_ms);
void op_txnlink_free(op_txnlink_t *t);

/* Writes fields (a later value of a name replaces the earlier) into the
 * entry the first of keys that exists names, or a new one, and makes every
 * key name it.  Empty keys are skipped; returns -1 if none is left, or
 * when an entry would pass OP_TXNLINK_MAX_FIELDS (the fields that fit are
 * written). */
int op_txnlink_put(op_txnlink_t *t, const char *const *keys, size_t nkeys,
                   const op_txnlink_field_t *fields, size_t nfields, uint64_t now_ms);

/* The fields of the entry the first existing key names: *n of them, valid
 * until the next call that changes the table.  NULL when none. */
const op_txnlink_field_t *op_txnlink_get(op_txnlink_t *t, const char *const *keys, size_t nkeys,
                                         size_t *n, uint64_t now_ms);

/* The key no longer names its entry (the entry stays under its other keys).
 * A new transaction on an envelope key that an older one used drops it first. */
void op_txnlink_unlink(op_txnlink_t *t, const char *key);

/* Forgets the entry key names, under all its keys. */
void op_txnlink_forget(op_txnlink_t *t, const char *key);

size_t op_txnlink_count(const op_txnlink_t *t);

#endif
