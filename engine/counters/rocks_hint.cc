/* Insert hints for the window buckets' keys (issue 20, "The counter write
 * per RCPT" in docs/performance.md).
 *
 * Every counted recipient rewrites its subject's current bucket: a new
 * version of the same 'c' key (counters_store.h), which RocksDB inserts
 * into the memtable's skip list from the top, about 25 key comparisons
 * into a list of ~100,000 entries.  The new version sorts right next to
 * the last one, so RocksDB's insert with a hint (a remembered position,
 * one per prefix, checked before it is used) needs a handful.  The prefix
 * is the key without its bucket time: limit 0 subject 0.
 *
 * A reservation record ('r' instance 0 limit 0 subject 0 start) is a new
 * key per transaction, but Postfix's instance (pid.seconds.usec.count, in
 * hex) makes one smtpd process's transactions of one second neighbours,
 * inserted in time order: their hint is per "pid.seconds." (bench/loadgen's
 * instance is pid.connection.sequence: one hint per connection).  Other
 * keys, and instances without two dots, have no hint.
 *
 * The C API has no setter for memtable_insert_with_hint_prefix_extractor,
 * so this reaches the C++ Options inside rocksdb_options_t, which c.cc
 * defines as below; the headers and the library are one package
 * (librocksdb-dev), so the layouts agree (op_rocks_insert_hints checks
 * three fields against the C API's getters before it writes).  The cost: a hint (about 220
 * bytes of the memtable's arena, and an entry in a hash map) per subject
 * counted and per smtpd process and second while a memtable fills. */
#include <rocksdb/c.h>
#include <rocksdb/options.h>
#include <rocksdb/slice.h>
#include <rocksdb/slice_transform.h>

#include <memory>

extern "C" {
#include "counters/rocks_hint.h"
}

struct rocksdb_options_t {
    rocksdb::Options rep;
};

extern "C" size_t op_rocks_hint_prefix(const char *key, size_t len)
{
    if (len > 8 + 1 && key[0] == 'c')
        return len - 8; /* 'c' limit 0 subject 0, without start(8) */
    if (len < 2 || key[0] != 'r')
        return 0;
    /* 'r' instance 0 ...: up to the instance's second dot */
    int dots = 0;
    for (size_t i = 1; i < len && key[i] != 0; i++)
        if (key[i] == '.' && ++dots == 2)
            return i + 1;
    return 0;
}

namespace {

class WritePrefix : public rocksdb::SliceTransform {
  public:
    const char *Name() const override { return "outpost.WritePrefix"; }
    rocksdb::Slice Transform(const rocksdb::Slice &key) const override
    {
        return rocksdb::Slice(key.data(), op_rocks_hint_prefix(key.data(), key.size()));
    }
    bool InDomain(const rocksdb::Slice &key) const override
    {
        return op_rocks_hint_prefix(key.data(), key.size()) > 0;
    }
};

} // namespace

extern "C" int op_rocks_insert_hints(rocksdb_options_t *opts)
{
    /* The layout above is c.cc's: if a librocksdb ever wraps its Options
     * differently, fields read through it differ from the C API's getters,
     * and the store goes without hints rather than writing into the
     * wrong place. */
    if (opts->rep.write_buffer_size != rocksdb_options_get_write_buffer_size(opts) ||
        opts->rep.max_open_files != rocksdb_options_get_max_open_files(opts) ||
        (int)opts->rep.info_log_level != rocksdb_options_get_info_log_level(opts))
        return -1;
    opts->rep.memtable_insert_with_hint_prefix_extractor = std::make_shared<WritePrefix>();
    return 0;
}
