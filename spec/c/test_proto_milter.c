/* The milter codec: packets as Postfix 3.7 sends them, every command, the
 * session state machine, bounds, and the reply encoders. */
#include "ctest.h"
#include "proto/proto_milter.h"

#include <stdint.h>

/* A stream under construction. */
typedef struct {
    char b[65536];
    size_t len;
} stream_t;

static void add(stream_t *s, char cmd, const char *data, size_t len)
{
    uint32_t n = (uint32_t)len + 1;
    s->b[s->len++] = (char)(n >> 24);
    s->b[s->len++] = (char)(n >> 16);
    s->b[s->len++] = (char)(n >> 8);
    s->b[s->len++] = (char)n;
    s->b[s->len++] = cmd;
    memcpy(s->b + s->len, data, len);
    s->len += len;
}
#define ADD(s, cmd, lit) add((s), (cmd), (lit), sizeof(lit) - 1)

/* Postfix 3.7's first packet, byte for byte (REAL-COMPONENTS.md section 8). */
static const char postfix_optneg[] = "\x00\x00\x00\x0d\x4f\x00\x00\x00\x06\x00\x00\x01\xff\x00\x1f\xff\xff";

static void postfix_session(stream_t *s)
{
    s->len = 0;
    memcpy(s->b, postfix_optneg, sizeof postfix_optneg - 1);
    s->len = sizeof postfix_optneg - 1;
    ADD(s, 'D', "Cj\0mail.example.org\0{daemon_addr}\0" "127.0.0.1\0v\0Postfix 3.7.11\0");
    ADD(s, 'C', "client.example.org\0" "4\x9c\x40" "192.0.2.7\0");
    ADD(s, 'H', "laptop\0");
    ADD(s, 'D', "M{auth_type}\0PLAIN\0{auth_authen}\0alice@example.org\0");
    ADD(s, 'M', "<alice@example.org>\0SIZE=1234\0BODY=8BITMIME\0");
    ADD(s, 'R', "<bob@example.net>\0");
    ADD(s, 'R', "<carol@example.net>\0");
    ADD(s, 'T', "");
    ADD(s, 'D', "Li\0" "5375FA72418\0");
    ADD(s, 'L', "From\0 Alice <alice@example.org>\0");
    ADD(s, 'L', "Subject\0 hello\0");
    ADD(s, 'N', "");
    ADD(s, 'B', "Hello Bob,\r\nbye\r\n");
    ADD(s, 'E', "");
    ADD(s, 'A', "");
    ADD(s, 'A', "");
    ADD(s, 'Q', "");
}

static const char want_cmds[] = "ODCHDMRRTDLLNBEAAQ";

/* Parses a whole stream fed in chunks of `chunk` bytes (0: all at once),
 * each call on a fresh heap copy of exactly the bytes received so far.
 * Writes the commands seen into cmds; returns the last parse result. */
static ssize_t feed(const char *data, size_t len, size_t chunk, char *cmds, size_t *ncmds,
                    op_milter_parser_t *p, op_milter_msg_t *last)
{
    op_milter_parser_init(p, NULL);
    size_t have = 0, start = 0;
    *ncmds = 0;
    ssize_t r = 0;
    while (start < len) {
        size_t more = chunk == 0 ? len - have : (have + chunk <= len ? chunk : len - have);
        have += more;
        for (;;) {
            char *copy = malloc(have - start + 1);
            memcpy(copy, data + start, have - start);
            op_milter_msg_t m;
            r = op_milter_parse(p, copy, have - start, &m);
            if (r > 0) {
                cmds[(*ncmds)++] = m.cmd;
                *last = m;
                /* pointers into copy are dead after free: keep only cmd */
                start += (size_t)r;
            }
            free(copy);
            if (r <= 0)
                break;
        }
        if (r < 0)
            return r;
        if (more == 0)
            break;
    }
    return r;
}

CTEST(postfix_session_whole)
{
    stream_t s;
    postfix_session(&s);
    op_milter_parser_t p;
    op_milter_parser_init(&p, NULL);
    size_t at = 0;
    int i = 0;
    op_milter_msg_t m;
    ssize_t r;
    while ((r = op_milter_parse(&p, s.b + at, s.len - at, &m)) > 0) {
        CHECK_INT(m.cmd, want_cmds[i]);
        switch (i) {
        case 0:
            CHECK_INT(m.u.optneg.version, 6);
            CHECK_INT(m.u.optneg.actions, 0x1ff);
            CHECK_INT(m.u.optneg.protocol, 0x1fffff);
            break;
        case 1:
            CHECK_INT(m.u.macro.stage, 'C');
            CHECK_INT(m.u.macro.n, 3);
            CHECK_STR(m.u.macro.names[0], "j");
            CHECK_STR(m.u.macro.values[2], "Postfix 3.7.11");
            break;
        case 2:
            CHECK_STR(m.u.connect.hostname, "client.example.org");
            CHECK_INT(m.u.connect.family, '4');
            CHECK_INT(m.u.connect.port, 40000);
            CHECK_STR(m.u.connect.address, "192.0.2.7");
            break;
        case 3: CHECK_STR(m.u.helo.name, "laptop"); break;
        case 5:
            CHECK_INT(m.u.envelope.nargs, 3);
            CHECK_STR(m.u.envelope.args[0], "<alice@example.org>");
            CHECK_STR(m.u.envelope.args[2], "BODY=8BITMIME");
            break;
        case 7: CHECK_STR(m.u.envelope.args[0], "<carol@example.net>"); break;
        case 10:
            CHECK_STR(m.u.header.name, "From");
            CHECK_STR(m.u.header.value, " Alice <alice@example.org>");
            break;
        case 13: CHECK_MEM(m.u.body.data, m.u.body.len, "Hello Bob,\r\nbye\r\n"); break;
        case 14: CHECK_INT(m.u.body.len, 0); break;
        }
        at += (size_t)r;
        i++;
    }
    CHECK_INT(r, 0);
    CHECK_INT(at, s.len);
    CHECK_INT(i, (int)strlen(want_cmds));
    CHECK_INT(p.state, OP_MILTER_S_CLOSED);
}

CTEST(postfix_session_every_chunk_size)
{
    stream_t s;
    postfix_session(&s);
    for (size_t chunk = 1; chunk <= 64; chunk++) {
        op_milter_parser_t p;
        op_milter_msg_t last;
        char cmds[64];
        size_t n;
        ssize_t r = feed(s.b, s.len, chunk, cmds, &n, &p, &last);
        CHECK(r >= 0);
        CHECK_MEM(cmds, n, want_cmds);
        CHECK_INT(p.state, OP_MILTER_S_CLOSED);
    }
}

CTEST(split_at_every_byte)
{
    stream_t s;
    postfix_session(&s);
    for (size_t cut = 1; cut < s.len; cut++) {
        op_milter_parser_t p;
        op_milter_parser_init(&p, NULL);
        /* first part alone, then the whole: the parser must not consume a
         * partial packet */
        op_milter_msg_t m;
        size_t at = 0;
        ssize_t r;
        while ((r = op_milter_parse(&p, s.b + at, cut - at, &m)) > 0)
            at += (size_t)r;
        CHECK(r == 0);
        while ((r = op_milter_parse(&p, s.b + at, s.len - at, &m)) > 0)
            at += (size_t)r;
        CHECK(r == 0 && at == s.len);
    }
}

/* One malformed or out-of-order packet after a valid prefix. */
static const struct {
    const char *name;
    const char *prefix_cmds; /* valid commands first: subset of "OCHMRT" */
    char cmd;
    const char *data;
    size_t len;
    int want; /* negated error code */
} bad[] = {
    {"unknown command", "O", 'Z', "", 0, OP_MILTER_ECOMMAND},
    {"optneg short", "", 'O', "\0\0\0\6\0\0\0\0", 8, OP_MILTER_EFORMAT},
    {"optneg long", "", 'O', "\0\0\0\6\0\0\0\0\0\0\0\0\0", 13, OP_MILTER_EFORMAT},
    {"optneg version 1", "", 'O', "\0\0\0\1\0\0\0\0\0\0\0\0", 12, OP_MILTER_EVERSION},
    {"anything before optneg", "", 'C', "h\0U", 3, OP_MILTER_EORDER},
    {"optneg twice", "O", 'O', "\0\0\0\6\0\0\0\0\0\0\0\0", 12, OP_MILTER_EORDER},
    {"connect bad family", "O", 'C', "h\0X", 3, OP_MILTER_EFORMAT},
    {"connect no family", "O", 'C', "h\0", 2, OP_MILTER_EFORMAT},
    {"connect unknown family with junk", "O", 'C', "h\0Ux", 4, OP_MILTER_EFORMAT},
    {"connect inet without address", "O", 'C', "h\0" "4\0\1", 5, OP_MILTER_EFORMAT},
    {"connect inet address not terminated", "O", 'C', "h\0" "4\0\1" "1.2.3.4", 12, OP_MILTER_EFORMAT},
    {"connect inet two strings after port", "O", 'C', "h\0" "4\0\1" "a\0b\0", 9, OP_MILTER_EFORMAT},
    {"connect twice", "OC", 'C', "h\0U", 3, OP_MILTER_EORDER},
    {"helo not terminated", "OC", 'H', "vm", 2, OP_MILTER_EFORMAT},
    {"helo two strings", "OC", 'H', "a\0b\0", 4, OP_MILTER_EFORMAT},
    {"mail empty", "OC", 'M', "", 0, OP_MILTER_EFORMAT},
    {"mail too many args", "OC", 'M', "a\0b\0c\0d\0e\0f\0g\0h\0i\0j\0k\0l\0m\0n\0o\0p\0q\0", 34, OP_MILTER_EMACROS},
    {"rcpt before mail", "OC", 'R', "<b@x>\0", 6, OP_MILTER_EORDER},
    {"data before mail", "OC", 'T', "", 0, OP_MILTER_EORDER},
    {"data with data", "OCMR", 'T', "x", 1, OP_MILTER_EFORMAT},
    {"header one string", "OCMRT", 'L', "From\0", 5, OP_MILTER_EFORMAT},
    {"header three strings", "OCMRT", 'L', "a\0b\0c\0", 6, OP_MILTER_EFORMAT},
    {"header before mail", "OC", 'L', "a\0b\0", 4, OP_MILTER_EORDER},
    {"eoh with data", "OCMRT", 'N', "x", 1, OP_MILTER_EFORMAT},
    {"body before mail", "OC", 'B', "x", 1, OP_MILTER_EORDER},
    {"mail during a message", "OCMR", 'M', "<a@x>\0", 6, OP_MILTER_EORDER},
    {"macro odd strings", "O", 'D', "Cj\0", 3, OP_MILTER_EFORMAT},
    {"macro not terminated", "O", 'D', "Cj\0v", 4, OP_MILTER_EFORMAT},
    {"macro without stage", "O", 'D', "", 0, OP_MILTER_EFORMAT},
    {"unknown not terminated", "OC", 'U', "XYZZY", 5, OP_MILTER_EFORMAT},
    {"unknown during headers", "OCMRT", 'U', "X\0", 2, OP_MILTER_EORDER},
    {"quit with data", "O", 'Q', "x", 1, OP_MILTER_EFORMAT},
};

static void add_valid(stream_t *s, char cmd)
{
    switch (cmd) {
    case 'O': add(s, 'O', "\0\0\0\6\0\0\1\xff\0\x1f\xff\xff", 12); break;
    case 'C': ADD(s, 'C', "h\0U"); break;
    case 'H': ADD(s, 'H', "vm\0"); break;
    case 'M': ADD(s, 'M', "<a@x>\0"); break;
    case 'R': ADD(s, 'R', "<b@x>\0"); break;
    case 'T': ADD(s, 'T', ""); break;
    }
}

CTEST(malformed_and_out_of_order)
{
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        stream_t s = {.len = 0};
        for (const char *c = bad[i].prefix_cmds; *c; c++)
            add_valid(&s, *c);
        size_t prefix_len = s.len;
        add(&s, bad[i].cmd, bad[i].data, bad[i].len);
        op_milter_parser_t p;
        op_milter_parser_init(&p, NULL);
        op_milter_msg_t m;
        size_t at = 0;
        ssize_t r;
        while ((r = op_milter_parse(&p, s.b + at, s.len - at, &m)) > 0)
            at += (size_t)r;
        if (r != -bad[i].want || at != prefix_len)
            fprintf(stderr, "  case '%s': got %zd at %zu, want %d at %zu\n", bad[i].name, r, at,
                    -bad[i].want, prefix_len);
        CHECK_INT(r, -bad[i].want);
        CHECK_INT(at, prefix_len);
        /* errors stick: the connection is done */
        CHECK_INT(op_milter_parse(&p, s.b, s.len, &m), -bad[i].want);
        CHECK(strlen(op_milter_strerror(r)) > 0);
    }
}

CTEST(lengths_zero_and_huge)
{
    op_milter_parser_t p;
    op_milter_msg_t m;
    op_milter_parser_init(&p, NULL);
    CHECK_INT(op_milter_parse(&p, "\0\0\0\0O", 5, &m), -OP_MILTER_ELENGTH);
    op_milter_parser_init(&p, NULL);
    /* 2^32-1 must fail at once, not wait for 4 GiB */
    CHECK_INT(op_milter_parse(&p, "\xff\xff\xff\xff", 4, &m), -OP_MILTER_ELENGTH);
    op_milter_limits_t lim = {.max_packet = 100, .max_macros = 2};
    op_milter_parser_init(&p, &lim);
    CHECK_INT(op_milter_parse(&p, "\0\0\0\x65", 4, &m), -OP_MILTER_ELENGTH); /* 101 */
    op_milter_parser_init(&p, &lim);
    CHECK_INT(op_milter_parse(&p, "\0\0\0\x64", 4, &m), 0); /* 100: wait for it */
}

CTEST(truncated_packets_wait)
{
    stream_t s = {.len = 0};
    ADD(&s, 'O', "\0\0\0\6\0\0\1\xff\0\x1f\xff\xff");
    op_milter_parser_t p;
    op_milter_msg_t m;
    for (size_t cut = 0; cut < s.len; cut++) {
        op_milter_parser_init(&p, NULL);
        CHECK_INT(op_milter_parse(&p, s.b, cut, &m), 0);
    }
    op_milter_parser_init(&p, NULL);
    CHECK_INT(op_milter_parse(&p, s.b, s.len, &m), (ssize_t)s.len);
}

CTEST(macro_limit)
{
    op_milter_limits_t lim = {.max_packet = 0, .max_macros = 2};
    stream_t s = {.len = 0};
    add_valid(&s, 'O');
    size_t first = s.len;
    ADD(&s, 'D', "Ca\0" "1\0b\0" "2\0");
    size_t second = s.len;
    ADD(&s, 'D', "Ca\0" "1\0b\0" "2\0c\0" "3\0");
    op_milter_parser_t p;
    op_milter_msg_t m;
    op_milter_parser_init(&p, &lim);
    CHECK_INT(op_milter_parse(&p, s.b, s.len, &m), (ssize_t)first);
    CHECK_INT(op_milter_parse(&p, s.b + first, s.len - first, &m), (ssize_t)(second - first));
    CHECK_INT(m.u.macro.n, 2);
    CHECK_INT(op_milter_parse(&p, s.b + second, s.len - second, &m), -OP_MILTER_EMACROS);
}

CTEST(states_after_abort_and_new_connection)
{
    stream_t s = {.len = 0};
    add_valid(&s, 'O');
    add_valid(&s, 'C');
    add_valid(&s, 'M');
    add_valid(&s, 'R');
    ADD(&s, 'A', "");           /* abort the message */
    add_valid(&s, 'M');         /* a new message on the same connection */
    add_valid(&s, 'R');
    ADD(&s, 'E', "");
    ADD(&s, 'K', "");           /* quit, new connection */
    add_valid(&s, 'C');
    ADD(&s, 'U', "XYZZY\0");
    ADD(&s, 'Q', "");
    op_milter_parser_t p;
    op_milter_parser_init(&p, NULL);
    op_milter_msg_t m;
    size_t at = 0;
    ssize_t r;
    while ((r = op_milter_parse(&p, s.b + at, s.len - at, &m)) > 0)
        at += (size_t)r;
    CHECK_INT(r, 0);
    CHECK_INT(at, s.len);
    CHECK_INT(p.state, OP_MILTER_S_CLOSED);
    stream_t after = {.len = 0};
    ADD(&after, 'A', "");
    CHECK_INT(op_milter_parse(&p, after.b, after.len, &m), -OP_MILTER_EORDER);
}

CTEST(skipped_steps_are_allowed)
{
    /* With NOCONNECT, NOHELO, NORCPT, NOHDRS the MTA sends MAIL then body. */
    stream_t s = {.len = 0};
    add_valid(&s, 'O');
    add_valid(&s, 'M');
    ADD(&s, 'B', "body");
    ADD(&s, 'E', "");
    op_milter_parser_t p;
    op_milter_parser_init(&p, NULL);
    op_milter_msg_t m;
    size_t at = 0;
    ssize_t r;
    while ((r = op_milter_parse(&p, s.b + at, s.len - at, &m)) > 0)
        at += (size_t)r;
    CHECK_INT(r, 0);
    CHECK_INT(at, s.len);
    CHECK_INT(p.state, OP_MILTER_S_CONNECTED);
}

CTEST(needs_reply)
{
    CHECK_INT(op_milter_needs_reply('O', 0), 1);
    CHECK_INT(op_milter_needs_reply('C', 0), 1);
    CHECK_INT(op_milter_needs_reply('C', OP_MILTER_P_NR_CONN), 0);
    CHECK_INT(op_milter_needs_reply('L', OP_MILTER_P_NR_HDR), 0);
    CHECK_INT(op_milter_needs_reply('L', OP_MILTER_P_NR_BODY), 1);
    CHECK_INT(op_milter_needs_reply('E', 0x1fffff), 1);
    CHECK_INT(op_milter_needs_reply('D', 0), 0);
    CHECK_INT(op_milter_needs_reply('A', 0), 0);
    CHECK_INT(op_milter_needs_reply('Q', 0), 0);
}

CTEST(negotiate)
{
    op_milter_options_t mta = {6, 0x1ff, 0x1fffff}, out;
    CHECK_INT(op_milter_negotiate(&mta, OP_MILTER_F_ADDHDRS | OP_MILTER_F_QUARANTINE,
                                  OP_MILTER_P_NOBODY | OP_MILTER_P_NOUNKNOWN,
                                  OP_MILTER_P_NR_CONN | OP_MILTER_P_NR_HELO, &out), 0);
    CHECK_INT(out.version, 6);
    CHECK_INT(out.actions, OP_MILTER_F_ADDHDRS | OP_MILTER_F_QUARANTINE);
    CHECK_INT(out.protocol, OP_MILTER_P_NOBODY | OP_MILTER_P_NOUNKNOWN | OP_MILTER_P_NR_CONN |
                                OP_MILTER_P_NR_HELO);
    /* an older MTA that offers less gets only what it offers */
    op_milter_options_t old = {2, 0x3, 0x7f};
    CHECK_INT(op_milter_negotiate(&old, 0x1ff, OP_MILTER_P_NOBODY, OP_MILTER_P_NR_CONN, &out), 0);
    CHECK_INT(out.version, 2);
    CHECK_INT(out.actions, 0x3);
    CHECK_INT(out.protocol, OP_MILTER_P_NOBODY);
    op_milter_options_t ancient = {1, 0, 0};
    CHECK_INT(op_milter_negotiate(&ancient, 0, 0, 0, &out), -OP_MILTER_EVERSION);
}

CTEST(encode_replies)
{
    char b[4096];
    CHECK_INT(op_milter_encode_simple(b, sizeof b, 'c'), 5);
    CHECK(memcmp(b, "\0\0\0\1c", 5) == 0);
    CHECK_INT(op_milter_encode_simple(b, 4, 'c'), 0);

    size_t n = op_milter_encode_replycode(b, sizeof b, 550, "5.7.1", "not\r\nyours");
    CHECK_MEM(b + 5, n - 6, "550 5.7.1 not  yours"); /* CR LF became spaces */
    CHECK_INT(b[n - 1], '\0');
    CHECK_INT((unsigned char)b[3], n - 4);
    CHECK_INT(b[4], 'y');
    CHECK_INT(op_milter_encode_replycode(b, sizeof b, 550, "4.7.1", "class mismatch"), 0);
    CHECK_INT(op_milter_encode_replycode(b, sizeof b, 250, "2.0.0", "no"), 0);
    char big[2000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    n = op_milter_encode_replycode(b, sizeof b, 451, "4.3.0", big);
    CHECK(n > 0 && n < 1000);

    n = op_milter_encode_header(b, sizeof b, 'h', 0, "X-Outpost", "checked");
    CHECK_INT(n, 5 + 10 + 8);
    CHECK(memcmp(b + 5, "X-Outpost\0checked\0", 18) == 0);
    n = op_milter_encode_header(b, sizeof b, 'm', 2, "Subject", "");
    CHECK_INT(n, 5 + 4 + 8 + 1);
    CHECK(memcmp(b + 5, "\0\0\0\2Subject\0\0", 13) == 0);
    n = op_milter_encode_header(b, sizeof b, 'i', 0, "X-A", "v");
    CHECK(memcmp(b + 4, "i\0\0\0\0X-A\0v\0", 11) == 0);

    n = op_milter_encode_string(b, sizeof b, 'q', "PO8: header From not yours");
    CHECK_MEM(b + 5, n - 6, "PO8: header From not yours");

    op_milter_options_t o = {6, OP_MILTER_F_ADDHDRS | OP_MILTER_F_SETSYMLIST, OP_MILTER_P_NOBODY};
    const char *lists[OP_MILTER_M_COUNT] = {NULL};
    lists[OP_MILTER_M_MAIL] = "{auth_authen} {mail_addr}";
    n = op_milter_encode_optneg(b, sizeof b, &o, lists);
    CHECK_INT(n, 5 + 12 + 4 + strlen(lists[OP_MILTER_M_MAIL]) + 1);
    CHECK(memcmp(b + 4, "O\0\0\0\6\0\0\1\1\0\0\0\x10\0\0\0\2{auth_authen}", 30) == 0);
}

/* SMFIR_SETSYMLIST: the stage names policies use, the macro names they may
 * ask for, and a negotiation reply with lists for several stages. */
CTEST(symlists)
{
    static const char *const stages[] = {"connect", "helo", "mail", "rcpt", "data", "eom", "eoh"};
    for (int i = 0; i < OP_MILTER_M_COUNT; i++)
        CHECK_INT(op_milter_stage(stages[i]), i);
    CHECK_INT(op_milter_stage("body"), -1);
    CHECK_INT(op_milter_stage("MAIL"), -1);
    CHECK_INT(op_milter_stage(NULL), -1);

    static const struct {
        const char *name;
        int ok;
    } names[] = {
        {"i", 1}, {"j", 1}, {"_", 1}, {"{auth_authen}", 1}, {"{tls_version}", 1}, {"{rcpt_addr}", 1},
        {"", 0}, {" ", 0}, {"{", 0}, {"}", 0}, {"{}", 0}, {"ij", 0}, {"{auth authen}", 0},
        {"{a}b", 0}, {"{a", 0}, {"{a}{b}", 0}, {"\x7f", 0},
        {"{0123456789012345678901234567890123456789012345678901234567890123}", 0},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (op_milter_macro_name_valid(names[i].name) != names[i].ok) {
            fprintf(stderr, "  macro name '%s': want %d\n", names[i].name, names[i].ok);
            ctest_failed_here = 1;
        }
    CHECK(!op_milter_macro_name_valid(NULL));

    char b[4096];
    op_milter_options_t o = {6, OP_MILTER_F_SETSYMLIST, 0};
    const char *lists[OP_MILTER_M_COUNT] = {NULL};
    lists[OP_MILTER_M_CONNECT] = "j {client_addr}";
    lists[OP_MILTER_M_EOM] = ""; /* none at end of message */
    lists[OP_MILTER_M_DATA] = "i";
    size_t n = op_milter_encode_optneg(b, sizeof b, &o, lists);
    /* in stage order: connect (0), data (4), eom (5) */
    static const char want[] = "O\0\0\0\6\0\0\1\0\0\0\0\0"
                               "\0\0\0\0j {client_addr}\0"
                               "\0\0\0\4i\0"
                               "\0\0\0\5\0";
    CHECK_INT(n, 4 + sizeof want - 1);
    CHECK(memcmp(b + 4, want, sizeof want - 1) == 0);
    CHECK_INT((unsigned char)b[3], sizeof want - 1);
    /* a list over the protocol's bound is cut, not overrun */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    lists[OP_MILTER_M_MAIL] = big;
    n = op_milter_encode_optneg(b, sizeof b, &o, lists);
    CHECK_INT(n, 4 + sizeof want - 1 + 4 + OP_MILTER_SYMLIST_MAX + 1);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
