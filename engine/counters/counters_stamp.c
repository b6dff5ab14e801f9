/* The store's version stamp: one record, key "v", that says which format
 * of the key layout (counters_store.h) the store holds and which outpost
 * wrote it last.  A store written by a newer outpost whose format this one
 * does not know is refused at open with a message that says so: reading
 * it could count wrong, and writing it could spoil it for the newer
 * version.  A store without a stamp (written before the stamp existed) is
 * format 1 and gets stamped.
 *
 * Raise OP__STORE_FORMAT only for a change an older outpost cannot read
 * correctly; say in CHANGELOG.md which versions read which format. */
#include "counters/counters_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAMP_KEY "v"

/* "FORMAT outpost VERSION" */
static int parse(const char *v, size_t len, long *format, char *by, size_t bylen)
{
    char buf[128];
    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, v, len);
    buf[len] = '\0';
    char *end;
    *format = strtol(buf, &end, 10);
    if (end == buf || *format < 1)
        return -1;
    while (*end == ' ')
        end++;
    snprintf(by, bylen, "%s", *end ? end : "an unknown version");
    return 0;
}

int op__store_stamp(op_rocks_t *c, const char *version, char *err, size_t errlen)
{
    char *dberr = NULL;
    size_t vlen = 0;
    char *v = rocksdb_get(c->db, c->ropts, STAMP_KEY, 1, &vlen, &dberr);
    if (dberr != NULL) {
        snprintf(err, errlen, "counters: cannot read the version stamp of %s: %s", c->path, dberr);
        free(dberr);
        return -1;
    }
    if (v != NULL) {
        long format;
        char by[100];
        int bad = parse(v, vlen, &format, by, sizeof by);
        free(v);
        if (bad) {
            snprintf(err, errlen, "counters: %s has a version stamp this outpost cannot read: it "
                     "was not written by outpost, or by a newer one; move it away to start with "
                     "empty counters", c->path);
            return -1;
        }
        if (format > OP__STORE_FORMAT) {
            snprintf(err, errlen, "counters: %s was written by %s in store format %ld, which "
                     "this outpost %s (format %d) cannot read: run that version or a newer one, "
                     "or move the store away to start with empty counters",
                     c->path, by, format, version, OP__STORE_FORMAT);
            return -1;
        }
    }
    if (c->read_only)
        return 0; /* a reader writes no stamp */
    /* Ours from now on: the format we write, and who wrote it. */
    char stamp[128];
    int n = snprintf(stamp, sizeof stamp, "%d outpost %s", OP__STORE_FORMAT, version);
    rocksdb_put(c->db, c->wopts_sync, STAMP_KEY, 1, stamp, (size_t)n, &dberr);
    if (dberr != NULL) {
        snprintf(err, errlen, "counters: cannot write the version stamp of %s: %s", c->path, dberr);
        free(dberr);
        return -1;
    }
    return 0;
}
