/* Insert hints for the window buckets' keys (rocks_hint.cc). */
#ifndef OP_ROCKS_HINT_H
#define OP_ROCKS_HINT_H

#include <rocksdb/c.h>
#include <stddef.h>

/* Makes the memtable keep, per (limit, subject), where that subject's
 * bucket key went last, and start the next insert of it there (and per
 * smtpd process and second for the reservation records).  Start-up only,
 * after the write buffer size, max_open_files and the info log level are
 * set (they check the options' layout): 0, or -1 when this librocksdb's
 * options are not laid out as expected (no hints then). */
int op_rocks_insert_hints(rocksdb_options_t *opts);

/* The length of a key's hint prefix: a bucket key's limit 0 subject 0
 * ('c'), a reservation record's instance up to its second dot ('r': a
 * Postfix instance's "pid.seconds."); 0 for a key that gets no hint. */
size_t op_rocks_hint_prefix(const char *key, size_t len);

#endif
