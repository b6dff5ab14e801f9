/* The renderings of a log line, over buffers, no I/O (log.c picks one per
 * target): RFC 3339 and RFC 3164 timestamps and headers, `key=value`
 * fields as the decision lines have always shown them, JSON strings, and
 * the journal's native protocol.  Every function appends to out at `at`,
 * never past cap - 1, keeps out NUL-terminated and returns the new end; a
 * value that does not fit is cut, never an escape sequence in half. */
#ifndef OP_LOG_FORMAT_H
#define OP_LOG_FORMAT_H

#include "core/log.h"

#include <stddef.h>
#include <time.h>

/* "2026-12-07T16:21:03.123+01:00": local time of tm (its tm_gmtoff) with
 * milliseconds from nsec. */
size_t op_log_fmt_rfc3339(char *out, size_t at, size_t cap, const struct tm *tm, long nsec);

/* "<PRI>Dec  7 16:21:03 IDENT[PID]: ", the form glibc's syslog(3) sends to
 * /dev/log and rsyslog/syslog-ng/journald read from local clients
 * (RFC 3164 without the host name, which the receiver adds).  facility is
 * the LOG_MAIL-style code (already shifted: facility number * 8). */
size_t op_log_fmt_syslog_header(char *out, size_t at, size_t cap, int facility, int level,
                                const struct tm *tm, const char *ident, long pid);

/* " key=value": quoted when the value is empty, has a space, '"' or '=',
 * or the field asks (OP_LF_QUOTE); '"' and '\' escaped with '\', control
 * bytes and DEL as \xNN (so no value can add a line); numbers bare.  Cut
 * at the field's max. */
size_t op_log_fmt_kv(char *out, size_t at, size_t cap, const op_log_field_t *f);

/* A JSON string with its quotes.  '"', '\' and control bytes escaped
 * (\n, \t, ... or \u00XX); valid UTF-8 kept as it is; each byte that does
 * not belong to a valid UTF-8 sequence (a stray continuation byte, an
 * overlong form, a surrogate, past U+10FFFF, a sequence cut short)
 * becomes \ufffd, so the output is always valid UTF-8 and valid JSON. */
size_t op_log_fmt_json_str(char *out, size_t at, size_t cap, const char *s, size_t len);

/* ,"key":value for a field: a JSON string, or the bare number for
 * OP_LF_NUM. */
size_t op_log_fmt_json_field(char *out, size_t at, size_t cap, const op_log_field_t *f);

/* One field of the journal's native protocol (systemd's
 * JOURNAL_NATIVE_PROTOCOL): "KEY\n", the value's length as 64-bit little
 * endian, the value, "\n" (the form that allows any byte in the value).
 * key is upper-cased; a field that does not fit is left out whole.  out
 * is binary here: the result is not NUL-terminated. */
size_t op_log_fmt_journal(char *out, size_t at, size_t cap, const char *key, const char *v,
                          size_t len);

#endif
