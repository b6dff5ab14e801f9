/* The RocksDB calls' guard (rocks_guard.cc): every run-time call into the
 * library passes a try block, and the first C++ exception poisons the store
 * for the rest of the process. */
#ifndef OP_ROCKS_GUARD_H
#define OP_ROCKS_GUARD_H

/* NULL while RocksDB never threw; else what it threw, where, and that the
 * store waits for a restart. */
const char *op_rocks_guard_fault(void);

#endif
