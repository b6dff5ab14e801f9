/* Insert hints for the window buckets' keys (rocks_hint.cc). */
#ifndef OP_ROCKS_HINT_H
#define OP_ROCKS_HINT_H

#include <rocksdb/c.h>

/* Makes the memtable keep, per (limit, subject), where that subject's
 * bucket key went last, and start the next insert of it there.  Start-up
 * only (before the store opens). */
void op_rocks_insert_hints(rocksdb_options_t *opts);

#endif
