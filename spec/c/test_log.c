/* The log's renderings (log_format.c) and its targets (log.c): RFC 3339
 * and syslog headers, key=value quoting, JSON escaping of any byte, the
 * journal's native fields; lines sent to a syslog or journal socket of
 * the test's own, a full socket dropping (never blocking) and counting,
 * an absent one falling back to stderr. */
#include "ctest.h"
#include "core/log.h"
#include "core/log_format.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>

static struct tm tm_of(int year, int mon, int mday, int h, int m, int s, long gmtoff)
{
    struct tm tm = {0};
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = mday;
    tm.tm_hour = h;
    tm.tm_min = m;
    tm.tm_sec = s;
    tm.tm_gmtoff = gmtoff;
    return tm;
}

CTEST(rfc3339)
{
    char b[64];
    struct tm tm = tm_of(2026, 12, 7, 16, 21, 3, 0);
    CHECK_INT(op_log_fmt_rfc3339(b, 0, sizeof b, &tm, 123456789), 29);
    CHECK_STR(b, "2026-12-07T16:21:03.123+00:00");
    tm = tm_of(2026, 1, 31, 0, 0, 59, 5400);
    op_log_fmt_rfc3339(b, 0, sizeof b, &tm, 999999999);
    CHECK_STR(b, "2026-01-31T00:00:59.999+01:30");
    tm = tm_of(1999, 7, 4, 23, 5, 0, -5 * 3600);
    op_log_fmt_rfc3339(b, 0, sizeof b, &tm, 0);
    CHECK_STR(b, "1999-07-04T23:05:00.000-05:00");
    /* no room: nothing appended, still terminated */
    b[0] = 'x';
    CHECK_INT(op_log_fmt_rfc3339(b, 0, 10, &tm, 0), 0);
    CHECK_STR(b, "");
}

CTEST(syslog_header)
{
    char b[128];
    struct tm tm = tm_of(2026, 12, 7, 16, 21, 3, 0);
    op_log_fmt_syslog_header(b, 0, sizeof b, LOG_MAIL, OP_LOG_INFO, &tm, "outpostd", 4242);
    CHECK_STR(b, "<22>Dec  7 16:21:03 outpostd[4242]: "); /* mail.info: 2*8+6 */
    tm = tm_of(2026, 5, 17, 9, 8, 7, 3600);
    op_log_fmt_syslog_header(b, 0, sizeof b, LOG_LOCAL3, OP_LOG_ERR, &tm, "op", 1);
    CHECK_STR(b, "<155>May 17 09:08:07 op[1]: "); /* local3.err: 19*8+3 */
}

static const char *kv(const char *key, const char *v, size_t len, unsigned flags, unsigned max)
{
    static char b[512];
    op_log_field_t f = {key, v, len, flags, max};
    op_log_fmt_kv(b, 0, sizeof b, &f);
    return b;
}
#define KV(k, v, fl, mx) kv(k, v, sizeof v - 1, fl, mx)

CTEST(kv_quoting)
{
    CHECK_STR(KV("sender", "alice@example.org", 0, 0), " sender=alice@example.org");
    CHECK_STR(KV("sasl_user", "", 0, 0), " sasl_user=\"\"");
    CHECK_STR(KV("action", "REJECT 5.7.1 no", 0, 0), " action=\"REJECT 5.7.1 no\"");
    CHECK_STR(KV("x", "a=b", 0, 0), " x=\"a=b\"");
    CHECK_STR(KV("x", "say \"hi\" \\o/", 0, 0), " x=\"say \\\"hi\\\" \\\\o/\"");
    CHECK_STR(KV("x", "ab", OP_LF_QUOTE, 0), " x=\"ab\"");
    CHECK_STR(KV("req", "42", OP_LF_NUM, 0), " req=42");
    /* control bytes: escaped, so no value adds a line or moves the cursor */
    CHECK_STR(KV("x", "a\nb\r\x1b[2J\x7f", 0, 0), " x=\"a\\x0ab\\x0d\\x1b[2J\\x7f\"");
    CHECK_STR(KV("q", "4Q7Jrx2hM1z9", 0, 5), " q=4Q7Jr");
    /* UTF-8 passes as it is in text */
    CHECK_STR(KV("x", "j\xc3\xbcrgen", 0, 0), " x=j\xc3\xbcrgen");
}

CTEST(kv_bounded)
{
    char big[1000];
    memset(big, '"', sizeof big);
    char b[64];
    op_log_field_t f = {"x", big, sizeof big, 0, 1000};
    size_t n = op_log_fmt_kv(b, 0, sizeof b, &f);
    CHECK(n < sizeof b);
    CHECK_INT(strlen(b), n);
    /* never half an escape: an even run of backslash-quote pairs */
    const char *v = strchr(b, '=') + 2;
    size_t i = 0;
    while (v[i] == '\\' && v[i + 1] == '"')
        i += 2;
    CHECK(v[i] == '"' && v[i + 1] == '\0');
}

static const char *js(const char *s, size_t len)
{
    static char b[1024];
    op_log_fmt_json_str(b, 0, sizeof b, s, len);
    return b;
}
#define JS(lit) js(lit, sizeof lit - 1)

CTEST(json_escaping)
{
    CHECK_STR(JS("plain"), "\"plain\"");
    CHECK_STR(JS(""), "\"\"");
    CHECK_STR(JS("q\"b\\s/"), "\"q\\\"b\\\\s/\"");
    CHECK_STR(JS("\n\r\t\b\f"), "\"\\n\\r\\t\\b\\f\"");
    CHECK_STR(JS("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
    CHECK_STR(js("a\0b", 3), "\"a\\u0000b\"");
    /* valid UTF-8 kept: 2, 3 and 4 bytes */
    CHECK_STR(JS("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
    /* invalid: each byte not in a valid sequence is U+FFFD */
    CHECK_STR(JS("\xff"), "\"\\ufffd\"");
    CHECK_STR(JS("a\x80z"), "\"a\\ufffdz\"");                      /* stray continuation */
    CHECK_STR(JS("\xc0\xaf"), "\"\\ufffd\\ufffd\"");               /* overlong '/' */
    CHECK_STR(JS("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\"");    /* overlong, 3 bytes */
    CHECK_STR(JS("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");    /* a surrogate */
    CHECK_STR(JS("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* past U+10FFFF */
    CHECK_STR(JS("\xe2\x82"), "\"\\ufffd\\ufffd\"");               /* cut short */
    CHECK_STR(JS("\xe2\x82x"), "\"\\ufffd\\ufffdx\"");
}

/* Every single byte and every pair gives a string of printable ASCII or
 * valid UTF-8 with no raw control byte: what json.loads accepts (the e2e
 * test parses real lines with Python). */
CTEST(json_every_byte)
{
    for (int a = 0; a < 256; a++)
        for (int b = -1; b < 256; b++) {
            char in[2] = {(char)a, (char)b};
            const char *out = js(in, b < 0 ? 1 : 2);
            size_t n = strlen(out);
            int ok = n >= 2 && out[0] == '"' && out[n - 1] == '"';
            for (size_t i = 1; ok && i + 1 < n; i++) {
                unsigned char c = (unsigned char)out[i];
                if (c < 0x20 || c == 0x7f)
                    ok = 0;
                if (c == '"' && out[i - 1] != '\\')
                    ok = 0;
            }
            if (!ok) {
                fprintf(stderr, "  bytes %02x %02x: %s\n", a, b & 0xff, out);
                CHECK(ok);
                return;
            }
        }
}

CTEST(json_bounded)
{
    char in[300];
    memset(in, '\x01', sizeof in);
    char b[40];
    size_t n = op_log_fmt_json_str(b, 0, sizeof b, in, sizeof in);
    CHECK(n < sizeof b);
    CHECK_INT(strlen(b), n);
    CHECK(b[n - 1] == '"');
    CHECK_INT((n - 2) % 6, 0); /* whole \u0001 escapes only */
}

CTEST(json_field)
{
    char b[128];
    op_log_field_t num = {"req", "42", 2, OP_LF_NUM, 0}, str = {"queue_id", "4Q7J\"", 5, 0, 0};
    size_t n = op_log_fmt_json_field(b, 0, sizeof b, &num);
    op_log_fmt_json_field(b, n, sizeof b, &str);
    CHECK_STR(b, ",\"req\":42,\"queue_id\":\"4Q7J\\\"\"");
}

CTEST(journal_field)
{
    char b[64];
    size_t n = op_log_fmt_journal(b, 0, sizeof b, "queue_id", "A\nB", 3);
    CHECK_INT(n, 9 + 8 + 3 + 1);
    CHECK_MEM(b, 9, "QUEUE_ID\n");
    CHECK(b[9] == 3 && b[10] == 0 && b[16] == 0);
    CHECK_MEM(b + 17, 4, "A\nB\n");
    /* a field that does not fit is left out whole */
    CHECK_INT(op_log_fmt_journal(b, n, sizeof b, "MESSAGE", "0123456789012345678901234567890123456789", 40), n);
}

/* A unix datagram socket of the test's own at a fresh path. */
static int bind_dgram(char *path, size_t cap)
{
    snprintf(path, cap, "/tmp/outpost-test-log.%d.sock", (int)getpid());
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    return fd;
}

static ssize_t recv_wait(int fd, char *buf, size_t cap)
{
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = recv(fd, buf, cap - 1, 0);
    if (n >= 0)
        buf[n] = '\0';
    return n;
}

static const op_log_field_t decision[] = {
    {"req", "7", 1, OP_LF_NUM, 0},
    {"service", "postout", 7, 0, 0},
    {"action", "DEFER 4.5.3 limit", 17, 0, 0},
    {"check", "PO7", 3, 0, 0},
    {"queue_id", "4Q7Jrx2hM1z9", 12, 0, 40},
};

CTEST(syslog_target)
{
    char path[108], b[4096];
    int fd = bind_dgram(path, sizeof path);
    CHECK(fd >= 0);
    op_log_sink_t s = {OP_LOG_TO_SYSLOG, OP_LOG_TEXT, LOG_MAIL, "outpostd-t", path};
    op_log_set_sink(&s);
    op_log_fields(OP_LOG_INFO, "decision", decision, 5);
    CHECK(recv_wait(fd, b, sizeof b) > 0);
    char want[256];
    snprintf(want, sizeof want, " outpostd-t[%d]: info: decision req=7 service=postout "
             "action=\"DEFER 4.5.3 limit\" check=PO7 queue_id=4Q7Jrx2hM1z9", (int)getpid());
    CHECK(strncmp(b, "<22>", 4) == 0);
    CHECK_STR(b + 19, want); /* after "<22>Mmm dd hh:mm:ss" */
    op_warn("a warning");
    CHECK(recv_wait(fd, b, sizeof b) > 0);
    CHECK(strncmp(b, "<20>", 4) == 0 && strstr(b, "]: warning: a warning") != NULL);
    /* json in the message part */
    s.format = OP_LOG_JSON;
    op_log_set_sink(&s);
    op_log_fields(OP_LOG_INFO, "decision", decision, 5);
    CHECK(recv_wait(fd, b, sizeof b) > 0);
    CHECK(strstr(b, "]: {\"ts\":\"") != NULL);
    CHECK(strstr(b, "\"level\":\"info\",\"msg\":\"decision\",\"req\":7,\"service\":\"postout\","
                    "\"action\":\"DEFER 4.5.3 limit\",\"check\":\"PO7\",\"queue_id\":\"4Q7Jrx2hM1z9\"}") != NULL);
    unlink(path);
}

/* Reads one native-protocol field KEY of datagram b (binary form). */
static int journal_get(const char *b, size_t n, const char *key, char *out, size_t cap)
{
    size_t kl = strlen(key);
    for (size_t at = 0; at < n;) {
        const char *nl = memchr(b + at, '\n', n - at);
        if (nl == NULL || (size_t)(nl - b) + 9 > n)
            return -1;
        uint64_t len = 0;
        for (int i = 0; i < 8; i++)
            len |= (uint64_t)(unsigned char)nl[1 + i] << (8 * i);
        const char *v = nl + 9;
        if ((size_t)(nl - (b + at)) == kl && memcmp(b + at, key, kl) == 0) {
            snprintf(out, cap, "%.*s", (int)len, v);
            return 0;
        }
        at = (size_t)(v - b) + len + 1;
    }
    return -1;
}

CTEST(journal_target)
{
    char path[108], b[16384], v[512];
    int fd = bind_dgram(path, sizeof path);
    CHECK(fd >= 0);
    op_log_sink_t s = {OP_LOG_TO_JOURNAL, OP_LOG_TEXT, LOG_MAIL, "outpostd", path};
    op_log_set_sink(&s);
    op_log_fields(OP_LOG_INFO, "decision", decision, 5);
    ssize_t n = recv_wait(fd, b, sizeof b);
    CHECK(n > 0);
    CHECK(journal_get(b, (size_t)n, "MESSAGE", v, sizeof v) == 0);
    CHECK_STR(v, "decision req=7 service=postout action=\"DEFER 4.5.3 limit\" check=PO7 queue_id=4Q7Jrx2hM1z9");
    CHECK(journal_get(b, (size_t)n, "PRIORITY", v, sizeof v) == 0);
    CHECK_STR(v, "6");
    CHECK(journal_get(b, (size_t)n, "SYSLOG_IDENTIFIER", v, sizeof v) == 0);
    CHECK_STR(v, "outpostd");
    CHECK(journal_get(b, (size_t)n, "SYSLOG_FACILITY", v, sizeof v) == 0);
    CHECK_STR(v, "2");
    CHECK(journal_get(b, (size_t)n, "QUEUE_ID", v, sizeof v) == 0);
    CHECK_STR(v, "4Q7Jrx2hM1z9");
    CHECK(journal_get(b, (size_t)n, "CHECK", v, sizeof v) == 0);
    CHECK_STR(v, "PO7");
    CHECK(journal_get(b, (size_t)n, "SERVICE", v, sizeof v) == 0);
    CHECK_STR(v, "postout");
    CHECK(journal_get(b, (size_t)n, "REQ", v, sizeof v) == 0);
    CHECK_STR(v, "7");
    unlink(path);
}

/* Nobody reads the socket: every op_log returns at once (an alarm would
 * kill a blocked test), lines past the socket's room are dropped and
 * counted, and once it has room again a warning says how many. */
CTEST(full_socket_drops)
{
    char path[108], b[8192];
    int fd = bind_dgram(path, sizeof path);
    CHECK(fd >= 0);
    op_log_sink_t s = {OP_LOG_TO_SYSLOG, OP_LOG_TEXT, LOG_MAIL, "outpostd", path};
    op_log_set_sink(&s);
    alarm(20);
    for (int i = 0; i < 5000; i++)
        op_info("line %d", i);
    alarm(0);
    unsigned long long d = op_log_dropped();
    CHECK(d > 0);
    CHECK(d < 5000);
    int fl = fcntl(fd, F_GETFL);
    fcntl(fd, F_SETFL, fl | O_NONBLOCK);
    size_t got = 0;
    while (recv(fd, b, sizeof b, 0) > 0)
        got++;
    CHECK_INT(got + d, 5000);
    op_info("after");
    CHECK(recv_wait(fd, b, sizeof b) > 0);
    CHECK(strstr(b, "info: after") != NULL);
    CHECK(recv_wait(fd, b, sizeof b) > 0);
    char want[256];
    snprintf(want, sizeof want, "warning: log: %llu lines dropped: the syslog socket %s had no room", d, path);
    CHECK(strstr(b, want) != NULL);
    unlink(path);
}

/* No reader at the path: the line goes to stderr, after one warning. */
CTEST(absent_socket_to_stderr)
{
    int p[2];
    CHECK(pipe(p) == 0);
    dup2(p[1], STDERR_FILENO);
    op_log_sink_t s = {OP_LOG_TO_SYSLOG, OP_LOG_TEXT, LOG_MAIL, "outpostd", "/nonexistent/outpost-log.sock"};
    op_log_set_sink(&s);
    op_info("first");
    op_info("second");
    char b[2048];
    ssize_t n = read(p[0], b, sizeof b - 1);
    CHECK(n > 0);
    b[n > 0 ? n : 0] = '\0';
    CHECK(strstr(b, "warning: log: cannot send to /nonexistent/outpost-log.sock (No such file or directory)") != NULL);
    CHECK(strstr(b, "info: first\n") != NULL && strstr(b, "info: second\n") != NULL);
    const char *w = strstr(b, "cannot send");
    CHECK(w != NULL && strstr(w + 1, "cannot send") == NULL); /* said once */
}

/* The same with format = json: the warning and the line are JSON too. */
CTEST(absent_socket_json)
{
    int p[2];
    CHECK(pipe(p) == 0);
    dup2(p[1], STDERR_FILENO);
    op_log_sink_t s = {OP_LOG_TO_SYSLOG, OP_LOG_JSON, LOG_MAIL, "outpostd", "/nonexistent/outpost-log.sock"};
    op_log_set_sink(&s);
    op_log_fields(OP_LOG_INFO, "decision", decision, 5);
    char b[2048];
    ssize_t n = read(p[0], b, sizeof b - 1);
    b[n > 0 ? n : 0] = '\0';
    CHECK(strncmp(b, "{\"ts\":\"", 7) == 0);
    CHECK(strstr(b, "\",\"level\":\"warning\",\"msg\":\"log: cannot send to /nonexistent/outpost-log.sock (No such file or directory); lines go to stderr until it takes them again\"}\n{\"ts\":\"") != NULL);
    CHECK(strstr(b, "\"msg\":\"decision\",\"req\":7,") != NULL);
    CHECK(n > 0 && b[n - 1] == '\n' && b[n - 2] == '}');
}

/* stderr, not a terminal: an RFC 3339 time; JOURNAL_STREAM naming it: the
 * <N> prefix; json: one object per line. */
CTEST(stderr_forms)
{
    char tmpl[] = "/tmp/outpost-test-log.XXXXXX";
    int fd = mkstemp(tmpl);
    CHECK(fd >= 0);
    dup2(fd, STDERR_FILENO);
    unsetenv("JOURNAL_STREAM");
    op_log_sink_t s = {OP_LOG_TO_STDERR, OP_LOG_TEXT, LOG_MAIL, "outpostd", NULL};
    op_log_set_sink(&s);
    op_info("plain");
    struct stat st;
    fstat(fd, &st);
    char js[64];
    snprintf(js, sizeof js, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", js, 1);
    op_log_set_sink(&s);
    op_notice("journal");
    setenv("JOURNAL_STREAM", "1:2", 1); /* inherited, not ours */
    s.format = OP_LOG_JSON;
    op_log_set_sink(&s);
    op_log_fields(OP_LOG_INFO, "decision", decision, 5);
    char b[4096];
    ssize_t n = pread(fd, b, sizeof b - 1, 0);
    b[n > 0 ? n : 0] = '\0';
    /* 2026-12-07T16:21:03.123+00:00 info: plain */
    int y, mo, d, h, mi, se, ms, oh, om;
    char sign;
    CHECK(sscanf(b, "%4d-%2d-%2dT%2d:%2d:%2d.%3d%c%2d:%2d info: plain\n", &y, &mo, &d, &h, &mi, &se,
                 &ms, &sign, &oh, &om) == 10);
    CHECK(strstr(b, "\n<5>notice: journal\n{\"ts\":\"") != NULL);
    CHECK(strstr(b, "\"level\":\"info\",\"msg\":\"decision\",\"req\":7,") != NULL);
    CHECK(b[n - 1] == '\n' && b[n - 2] == '}');
    unlink(tmpl);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
