/* bench-milterload: closed-loop load for a milter, as an MTA plays it.
 *
 * Each of -c threads opens a connection per message and walks a whole
 * session the way Postfix does: option negotiation, connect, HELO, MAIL,
 * RCPT, DATA, a few headers, end of headers, a body of --body bytes, end
 * of message, quit.  It waits for a reply wherever the negotiated protocol
 * says the filter sends one, and checks every reply is a known one.
 * Threads with blocking sockets: simple, and plenty for a benchmark whose
 * subject is the filter.  Bounded by -d seconds and -n messages.
 *
 * Last line: messages=N errors=N seconds=S mps=R p50_us=N p99_us=N max_us=N */
#include "proto/proto_milter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char *opt_unix, *opt_host = "127.0.0.1";
static int opt_port, opt_conns = 8;
static double opt_seconds = 5;
static long opt_max = 0;
static size_t opt_body = 10240;
/* --message FILE: its header fields and body instead of the made-up ones
 * (a DKIM-signed message for MO8's bench); values as Postfix sends them,
 * without the space after the colon and folded with LF */
#define MAX_FILE_HDRS 64
static struct {
    char name[128];
    char *value;
} file_hdrs[MAX_FILE_HDRS];
static size_t nfile_hdrs;
static char *file_body;
static size_t file_body_len;

static int load_message(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[len] = 0;
    size_t i = 0;
    while (i + 1 < len && !(buf[i] == '\r' && buf[i + 1] == '\n') && nfile_hdrs < MAX_FILE_HDRS) {
        char *colon = memchr(buf + i, ':', len - i);
        if (!colon)
            return -1;
        size_t nlen = (size_t)(colon - (buf + i));
        if (nlen >= sizeof file_hdrs[0].name)
            return -1;
        memcpy(file_hdrs[nfile_hdrs].name, buf + i, nlen);
        size_t v = (size_t)(colon - buf) + 1;
        if (v < len && buf[v] == ' ')
            v++;
        size_t e = v;
        for (;;) {
            while (e + 1 < len && !(buf[e] == '\r' && buf[e + 1] == '\n'))
                e++;
            if (e + 2 < len && (buf[e + 2] == ' ' || buf[e + 2] == '\t'))
                e += 2;
            else
                break;
        }
        char *val = malloc(e - v + 1);
        size_t n = 0;
        for (size_t k = v; k < e; k++)
            if (buf[k] != '\r')
                val[n++] = buf[k];
        val[n] = 0;
        file_hdrs[nfile_hdrs++].value = val;
        i = e + 2;
    }
    i += 2;
    file_body = buf + i;
    file_body_len = len > i ? len - i : 0;
    return 0;
}

static atomic_long done_messages, errors, issued;
static double deadline;
#define MAX_SAMPLES 2000000
static uint32_t *samples;
static atomic_long nsamples;
static atomic_long reply_seen[256];

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int dial(void)
{
    int fd;
    if (opt_unix) {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", opt_unix);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
    } else {
        struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt_port)};
        inet_pton(AF_INET, opt_host, &sa.sin_addr);
        fd = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
            return fd;
    }
    if (fd >= 0)
        close(fd);
    return -1;
}

static int send_all(int fd, const char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int read_all(int fd, char *b, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, b, n);
        if (r <= 0)
            return -1;
        b += r;
        n -= (size_t)r;
    }
    return 0;
}

static void put_packet(char **p, char cmd, const void *data, size_t len)
{
    uint32_t n = htonl((uint32_t)len + 1);
    memcpy(*p, &n, 4);
    (*p)[4] = cmd;
    memcpy(*p + 5, data, len);
    *p += 5 + len;
}

/* Reads one reply; returns its command byte or -1.  Progress replies are
 * skipped (the filter is still working). */
static int read_reply(int fd, char *buf, size_t cap, uint32_t *len_out)
{
    for (;;) {
        char hdr[4];
        if (read_all(fd, hdr, 4) != 0)
            return -1;
        uint32_t len;
        memcpy(&len, hdr, 4);
        len = ntohl(len);
        if (len == 0 || len > cap)
            return -1;
        if (read_all(fd, buf, len) != 0)
            return -1;
        if (len_out)
            *len_out = len;
        atomic_fetch_add(&reply_seen[(unsigned char)buf[0]], 1);
        if (buf[0] != OP_MILTER_R_PROGRESS)
            return (unsigned char)buf[0];
    }
}

/* Reads replies until the final one of end of message: modifications come first. */
static int read_eom(int fd, char *buf, size_t cap)
{
    for (;;) {
        int r = read_reply(fd, buf, cap, NULL);
        if (r < 0)
            return -1;
        if (r == OP_MILTER_R_ADDHEADER || r == OP_MILTER_R_CHGHEADER || r == OP_MILTER_R_INSHEADER ||
            r == OP_MILTER_R_QUARANTINE || r == OP_MILTER_R_ADDRCPT || r == OP_MILTER_R_DELRCPT ||
            r == OP_MILTER_R_CHGFROM || r == OP_MILTER_R_REPLBODY)
            continue;
        return r;
    }
}

static int is_verdict(int r)
{
    return r == OP_MILTER_R_CONTINUE || r == OP_MILTER_R_ACCEPT || r == OP_MILTER_R_REJECT ||
           r == OP_MILTER_R_TEMPFAIL || r == OP_MILTER_R_DISCARD || r == OP_MILTER_R_REPLYCODE ||
           r == OP_MILTER_R_SKIP;
}

/* One message; returns 0 on success. */
static int one_message(int id, long n, char *scratch)
{
    int fd = dial();
    if (fd < 0)
        return -1;
    char *p = scratch;
    char optneg[12];
    uint32_t v = htonl(6), a = htonl(0x1ff), pr = htonl(0x1fffff);
    memcpy(optneg, &v, 4);
    memcpy(optneg + 4, &a, 4);
    memcpy(optneg + 8, &pr, 4);
    put_packet(&p, 'O', optneg, 12);
    int rc = -1;
    char rbuf[65536];
    uint32_t rlen;
    if (send_all(fd, scratch, (size_t)(p - scratch)) != 0 ||
        read_reply(fd, rbuf, sizeof rbuf, &rlen) != 'O' || rlen < 13)
        goto out;
    uint32_t proto;
    memcpy(&proto, rbuf + 9, 4);
    proto = ntohl(proto);

    char data[4096];
    int dl;
    typedef struct {
        char cmd;
        const char *data;
        int len;
    } step_t;
    step_t steps[16];
    int ns = 0;
    char conn[64], mail[96], rcpt[96], user[96];
    int cl = snprintf(conn, sizeof conn, "client%d.example.org%c4%c%c192.0.2.%d", id, 0, 0x9c, 0x40,
                      1 + id % 250) + 1;
    int ml = snprintf(mail, sizeof mail, "<user%ld@example.org>", n % 1000) + 1;
    int rl = snprintf(rcpt, sizeof rcpt, "<rcpt%ld@example.net>", n % 997) + 1;
    int ul = snprintf(user, sizeof user, "M{auth_authen}%cuser%ld@example.org", 0, n % 1000) + 1;
    steps[ns++] = (step_t){'D', "Cj\0mail.example.org\0", 20};
    steps[ns++] = (step_t){'C', conn, cl};
    steps[ns++] = (step_t){'H', "client.example.org", 19};
    steps[ns++] = (step_t){'D', user, ul};
    steps[ns++] = (step_t){'M', mail, ml};
    steps[ns++] = (step_t){'R', rcpt, rl};
    steps[ns++] = (step_t){'T', "", 0};
    p = scratch;
    for (int i = 0; i < ns; i++) {
        put_packet(&p, steps[i].cmd, steps[i].data, (size_t)steps[i].len);
        if (op_milter_needs_reply(steps[i].cmd, proto)) {
            if (send_all(fd, scratch, (size_t)(p - scratch)) != 0)
                goto out;
            p = scratch;
            int r = read_reply(fd, rbuf, sizeof rbuf, NULL);
            if (!is_verdict(r))
                goto out;
            if (r != OP_MILTER_R_CONTINUE) { /* refused early: the message ends here */
                rc = 0;
                goto out;
            }
        }
    }
    static const char *const hdrs[][2] = {
        {"From", " User <user@example.org>"}, {"To", " rcpt@example.net"},
        {"Subject", " benchmark message"},    {"Date", " Sat, 28 Nov 2026 10:00:00 +0000"},
        {"Message-ID", " <bench@example.org>"},
    };
    if (!(proto & OP_MILTER_P_NOHDRS)) {
        size_t nh = nfile_hdrs ? nfile_hdrs : sizeof hdrs / sizeof hdrs[0];
        for (size_t i = 0; i < nh; i++) {
            if (nfile_hdrs)
                dl = snprintf(data, sizeof data, "%s%c%s", file_hdrs[i].name, 0, file_hdrs[i].value) + 1;
            else
                dl = snprintf(data, sizeof data, "%s%c%s", hdrs[i][0], 0, hdrs[i][1]) + 1;
            put_packet(&p, 'L', data, (size_t)dl);
            if (op_milter_needs_reply('L', proto)) {
                if (send_all(fd, scratch, (size_t)(p - scratch)) != 0 ||
                    !is_verdict(read_reply(fd, rbuf, sizeof rbuf, NULL)))
                    goto out;
                p = scratch;
            }
        }
    }
    if (!(proto & OP_MILTER_P_NOEOH)) {
        put_packet(&p, 'N', "", 0);
        if (op_milter_needs_reply('N', proto)) {
            if (send_all(fd, scratch, (size_t)(p - scratch)) != 0 ||
                !is_verdict(read_reply(fd, rbuf, sizeof rbuf, NULL)))
                goto out;
            p = scratch;
        }
    }
    if (!(proto & OP_MILTER_P_NOBODY)) {
        static char body[1 << 20];
        static int body_ready;
        if (!body_ready) {
            for (size_t i = 0; i < sizeof body; i++)
                body[i] = (i % 72 == 71) ? '\n' : (char)('a' + i % 26);
            body_ready = 1;
        }
        if (file_body)
            put_packet(&p, 'B', file_body, file_body_len < 65535 ? file_body_len : 65535);
        else
            put_packet(&p, 'B', body, opt_body < sizeof body ? opt_body : sizeof body);
        if (op_milter_needs_reply('B', proto)) {
            if (send_all(fd, scratch, (size_t)(p - scratch)) != 0 ||
                !is_verdict(read_reply(fd, rbuf, sizeof rbuf, NULL)))
                goto out;
            p = scratch;
        }
    }
    put_packet(&p, 'E', "", 0);
    if (send_all(fd, scratch, (size_t)(p - scratch)) != 0)
        goto out;
    if (!is_verdict(read_eom(fd, rbuf, sizeof rbuf)))
        goto out;
    p = scratch;
    put_packet(&p, 'Q', "", 0);
    send_all(fd, scratch, (size_t)(p - scratch));
    rc = 0;
out:
    close(fd);
    return rc;
}

static void *worker(void *arg)
{
    int id = (int)(long)arg;
    size_t cap = (1 << 20) + 65536;
    char *scratch = malloc(cap);
    for (;;) {
        long n = atomic_fetch_add(&issued, 1);
        if ((opt_max > 0 && n >= opt_max) || now() >= deadline)
            break;
        double t0 = now();
        if (one_message(id, n, scratch) != 0) {
            atomic_fetch_add(&errors, 1);
            continue;
        }
        long k = atomic_fetch_add(&nsamples, 1);
        if (k < MAX_SAMPLES)
            samples[k] = (uint32_t)((now() - t0) * 1e6);
        atomic_fetch_add(&done_messages, 1);
    }
    free(scratch);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-milterload (--unix PATH | --tcp HOST:PORT) [-c N] [-d SECONDS] [-n COUNT] [--body BYTES] [--message FILE]\n"
               "Closed-loop milter load: each of -c threads walks whole sessions (negotiate ...\n"
               "end of message, quit), one connection per message, waiting for a reply wherever\n"
               "the negotiated protocol says one comes.  Last line:\n"
               "messages=N errors=N seconds=S mps=R p50_us=N p99_us=N max_us=N\n"
               "Exit status 0 when errors is 0.\n");
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--unix") == 0 && v) opt_unix = v, i++;
        else if (strcmp(a, "--tcp") == 0 && v) {
            static char host[64];
            const char *c = strrchr(v, ':');
            if (!c) { usage(stderr); return 2; }
            snprintf(host, sizeof host, "%.*s", (int)(c - v), v);
            opt_host = host;
            opt_port = atoi(c + 1);
            i++;
        } else if (strcmp(a, "-c") == 0 && v) opt_conns = atoi(v), i++;
        else if (strcmp(a, "-d") == 0 && v) opt_seconds = atof(v), i++;
        else if (strcmp(a, "-n") == 0 && v) opt_max = atol(v), i++;
        else if (strcmp(a, "--body") == 0 && v) opt_body = (size_t)atol(v), i++;
        else if (strcmp(a, "--message") == 0 && v) {
            if (load_message(v) != 0) {
                fprintf(stderr, "bench-milterload: cannot read the message %s\n", v);
                return 2;
            }
            i++;
        }
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) { usage(stdout); return 0; }
        else { usage(stderr); return 2; }
    }
    if ((!opt_unix && !opt_port) || opt_conns < 1 || opt_conns > 1024 || opt_seconds <= 0 ||
        opt_seconds > 3600) {
        usage(stderr);
        return 2;
    }
    samples = calloc(MAX_SAMPLES, sizeof *samples);
    pthread_t *t = calloc((size_t)opt_conns, sizeof *t);
    double t0 = now();
    deadline = t0 + opt_seconds;
    for (int i = 0; i < opt_conns; i++)
        pthread_create(&t[i], NULL, worker, (void *)(long)i);
    for (int i = 0; i < opt_conns; i++)
        pthread_join(t[i], NULL);
    double secs = now() - t0;
    long n = atomic_load(&nsamples) < MAX_SAMPLES ? atomic_load(&nsamples) : MAX_SAMPLES;
    qsort(samples, (size_t)n, sizeof *samples, cmp_u32);
    for (int c = 0; c < 256; c++)
        if (atomic_load(&reply_seen[c]) > 0)
            printf("reply %ld %c\n", atomic_load(&reply_seen[c]), c);
    printf("messages=%ld errors=%ld seconds=%.3f mps=%.0f p50_us=%u p99_us=%u max_us=%u\n",
           atomic_load(&done_messages), atomic_load(&errors), secs,
           (double)atomic_load(&done_messages) / secs, n ? samples[n / 2] : 0,
           n ? samples[(size_t)((double)n * 0.99)] : 0, n ? samples[n - 1] : 0);
    free(samples);
    free(t);
    return atomic_load(&errors) == 0 ? 0 : 1;
}
