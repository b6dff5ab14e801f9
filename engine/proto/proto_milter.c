#include "proto/proto_milter.h"

#include <stdio.h>
#include <string.h>

static uint32_t get32(const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | (uint32_t)u[3];
}

static void put32(char *p, uint32_t v)
{
    p[0] = (char)(v >> 24);
    p[1] = (char)(v >> 16);
    p[2] = (char)(v >> 8);
    p[3] = (char)v;
}

void op_milter_parser_init(op_milter_parser_t *p, const op_milter_limits_t *limits)
{
    memset(p, 0, sizeof *p);
    p->limits.max_packet = limits && limits->max_packet ? limits->max_packet
                                                        : OP_MILTER_MAX_PACKET_DEFAULT;
    p->limits.max_macros = limits && limits->max_macros ? limits->max_macros
                                                        : OP_MILTER_MAX_MACROS_DEFAULT;
    if (p->limits.max_macros > OP_MILTER_MAX_MACROS_DEFAULT)
        p->limits.max_macros = OP_MILTER_MAX_MACROS_DEFAULT;
    p->state = OP_MILTER_S_START;
}

/* Splits NUL-terminated strings filling data[0..len) exactly.  Returns the
 * count, or -1 when the data does not end with NUL or holds more than max. */
static int split_strings(const char *data, size_t len, const char **out, size_t max)
{
    if (len == 0 || data[len - 1] != '\0')
        return -1;
    size_t n = 0;
    const char *p = data, *end = data + len;
    while (p < end) {
        if (n == max)
            return -2;
        out[n++] = p;
        p += strlen(p) + 1;
    }
    return (int)n;
}

static int decode_connect(const char *d, size_t len, op_milter_msg_t *m)
{
    const char *nul = memchr(d, '\0', len);
    if (nul == NULL || (size_t)(nul - d) + 2 > len)
        return -OP_MILTER_EFORMAT;
    m->u.connect.hostname = d;
    size_t at = (size_t)(nul - d) + 1;
    m->u.connect.family = d[at++];
    m->u.connect.port = 0;
    m->u.connect.address = "";
    switch (m->u.connect.family) {
    case 'U':
        return at == len ? 0 : -OP_MILTER_EFORMAT;
    case '4':
    case '6':
    case 'L':
        if (len < at + 3 || d[len - 1] != '\0' || memchr(d + at + 2, '\0', len - at - 2) != d + len - 1)
            return -OP_MILTER_EFORMAT;
        m->u.connect.port = (uint16_t)((unsigned char)d[at] << 8 | (unsigned char)d[at + 1]);
        m->u.connect.address = d + at + 2;
        return 0;
    default:
        return -OP_MILTER_EFORMAT;
    }
}

static int decode(op_milter_parser_t *p, const char *d, size_t len, op_milter_msg_t *m)
{
    const char *strs[2 * OP_MILTER_MAX_MACROS_DEFAULT + 1];
    int n;
    switch (m->cmd) {
    case OP_MILTER_OPTNEG:
        if (len != 12)
            return -OP_MILTER_EFORMAT;
        m->u.optneg.version = get32(d);
        m->u.optneg.actions = get32(d + 4);
        m->u.optneg.protocol = get32(d + 8);
        return m->u.optneg.version < 2 ? -OP_MILTER_EVERSION : 0;
    case OP_MILTER_CONNECT:
        return decode_connect(d, len, m);
    case OP_MILTER_MACRO:
        if (len < 1)
            return -OP_MILTER_EFORMAT;
        m->u.macro.stage = d[0];
        m->u.macro.n = 0;
        if (len == 1)
            return 0;
        n = split_strings(d + 1, len - 1, strs, 2 * p->limits.max_macros);
        if (n == -2)
            return -OP_MILTER_EMACROS;
        if (n < 0 || n % 2 != 0)
            return -OP_MILTER_EFORMAT;
        for (int i = 0; i < n; i += 2) {
            m->u.macro.names[i / 2] = strs[i];
            m->u.macro.values[i / 2] = strs[i + 1];
        }
        m->u.macro.n = (size_t)n / 2;
        return 0;
    case OP_MILTER_HELO:
        if (split_strings(d, len, strs, 1) != 1)
            return -OP_MILTER_EFORMAT;
        m->u.helo.name = strs[0];
        return 0;
    case OP_MILTER_MAIL:
    case OP_MILTER_RCPT:
        n = split_strings(d, len, m->u.envelope.args, OP_MILTER_MAX_ARGS);
        if (n == -2)
            return -OP_MILTER_EMACROS;
        if (n < 1)
            return -OP_MILTER_EFORMAT;
        m->u.envelope.nargs = (size_t)n;
        return 0;
    case OP_MILTER_HEADER:
        if (split_strings(d, len, strs, 2) != 2)
            return -OP_MILTER_EFORMAT;
        m->u.header.name = strs[0];
        m->u.header.value = strs[1];
        return 0;
    case OP_MILTER_BODY:
    case OP_MILTER_EOM:
        m->u.body.data = d;
        m->u.body.len = len;
        return 0;
    case OP_MILTER_UNKNOWN:
        if (split_strings(d, len, strs, 1) != 1)
            return -OP_MILTER_EFORMAT;
        m->u.unknown.line = strs[0];
        return 0;
    case OP_MILTER_ABORT:
    case OP_MILTER_EOH:
    case OP_MILTER_QUIT:
    case OP_MILTER_QUIT_NC:
    case OP_MILTER_DATA:
        return len == 0 ? 0 : -OP_MILTER_EFORMAT;
    default:
        return -OP_MILTER_ECOMMAND;
    }
}

/* The session state machine: the state after cmd, or -1 when cmd may not
 * come now.  Steps the MTA was told to skip (SMFIP_NO*) simply never come,
 * so every state accepts the commands of the states it may skip to. */
static int next_state(int s, char cmd)
{
    enum { START = OP_MILTER_S_START, READY = OP_MILTER_S_READY, CONN = OP_MILTER_S_CONNECTED,
           MAIL = OP_MILTER_S_MAIL, RCPT = OP_MILTER_S_RCPT, HDRS = OP_MILTER_S_HEADERS,
           BODY = OP_MILTER_S_BODY, CLOSED = OP_MILTER_S_CLOSED };
    if (s == CLOSED)
        return -1;
    if (s == START)
        return cmd == OP_MILTER_OPTNEG ? READY : -1;
    switch (cmd) {
    case OP_MILTER_OPTNEG:
        return -1;
    case OP_MILTER_MACRO:
        return s;
    case OP_MILTER_QUIT:
        return CLOSED;
    case OP_MILTER_QUIT_NC:
        return READY;
    case OP_MILTER_ABORT: /* Postfix sends it after a message, too */
        return s == READY ? READY : CONN;
    case OP_MILTER_CONNECT:
        return s == READY ? CONN : -1;
    case OP_MILTER_HELO:
        return s == READY || s == CONN ? CONN : -1;
    case OP_MILTER_UNKNOWN:
        return s == READY || s == CONN || s == MAIL || s == RCPT ? s : -1;
    case OP_MILTER_MAIL:
        return s == READY || s == CONN ? MAIL : -1;
    case OP_MILTER_RCPT:
        return s == MAIL || s == RCPT ? RCPT : -1;
    case OP_MILTER_DATA:
        return s == MAIL || s == RCPT ? HDRS : -1;
    case OP_MILTER_HEADER:
        return s == MAIL || s == RCPT || s == HDRS ? HDRS : -1;
    case OP_MILTER_EOH:
        return s == MAIL || s == RCPT || s == HDRS ? BODY : -1;
    case OP_MILTER_BODY:
        return s == MAIL || s == RCPT || s == HDRS || s == BODY ? BODY : -1;
    case OP_MILTER_EOM:
        return s == MAIL || s == RCPT || s == HDRS || s == BODY ? CONN : -1;
    default:
        return -1;
    }
}

ssize_t op_milter_parse(op_milter_parser_t *p, const char *buf, size_t len, op_milter_msg_t *out)
{
    if (p->failed)
        return -p->failed;
    if (len < 4)
        return 0;
    uint32_t plen = get32(buf);
    if (plen == 0 || plen > p->limits.max_packet) {
        p->failed = OP_MILTER_ELENGTH;
        return -OP_MILTER_ELENGTH;
    }
    if (len < 4 + (size_t)plen)
        return 0;
    memset(out, 0, offsetof(op_milter_msg_t, u));
    out->cmd = buf[4];
    int rc = decode(p, buf + 5, plen - 1, out);
    if (rc == 0) {
        int ns = next_state((int)p->state, out->cmd);
        if (ns < 0)
            rc = -OP_MILTER_EORDER;
        else
            p->state = (op_milter_state_t)ns;
    }
    if (rc < 0) {
        p->failed = -rc;
        return rc;
    }
    return 4 + (ssize_t)plen;
}

const char *op_milter_strerror(ssize_t err)
{
    switch (-err) {
    case OP_MILTER_ELENGTH: return "packet length is 0 or over the limit";
    case OP_MILTER_ECOMMAND: return "unknown command";
    case OP_MILTER_EFORMAT: return "packet data does not match its command";
    case OP_MILTER_EORDER: return "command out of order for the session state";
    case OP_MILTER_EMACROS: return "too many macros or arguments";
    case OP_MILTER_EVERSION: return "MTA speaks a milter protocol version below 2";
    default: return "unknown error";
    }
}

const char *op_milter_state_name(op_milter_state_t s)
{
    static const char *const names[] = {"start", "ready", "connected", "mail", "rcpt",
                                        "headers", "body", "closed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "?";
}

int op_milter_needs_reply(char cmd, uint32_t protocol)
{
    switch (cmd) {
    case OP_MILTER_OPTNEG: return 1;
    case OP_MILTER_CONNECT: return !(protocol & OP_MILTER_P_NR_CONN);
    case OP_MILTER_HELO: return !(protocol & OP_MILTER_P_NR_HELO);
    case OP_MILTER_MAIL: return !(protocol & OP_MILTER_P_NR_MAIL);
    case OP_MILTER_RCPT: return !(protocol & OP_MILTER_P_NR_RCPT);
    case OP_MILTER_DATA: return !(protocol & OP_MILTER_P_NR_DATA);
    case OP_MILTER_UNKNOWN: return !(protocol & OP_MILTER_P_NR_UNKN);
    case OP_MILTER_HEADER: return !(protocol & OP_MILTER_P_NR_HDR);
    case OP_MILTER_EOH: return !(protocol & OP_MILTER_P_NR_EOH);
    case OP_MILTER_BODY: return !(protocol & OP_MILTER_P_NR_BODY);
    case OP_MILTER_EOM: return 1;
    default: return 0; /* MACRO, ABORT, QUIT, QUIT_NC */
    }
}

int op_milter_negotiate(const op_milter_options_t *mta, uint32_t want_actions,
                        uint32_t skip_steps, uint32_t no_reply, op_milter_options_t *out)
{
    if (mta->version < 2)
        return -OP_MILTER_EVERSION;
    out->version = mta->version < OP_MILTER_VERSION ? mta->version : OP_MILTER_VERSION;
    out->actions = want_actions & mta->actions;
    out->protocol = (skip_steps | no_reply) & mta->protocol;
    return 0;
}

int op_milter_stage(const char *name)
{
    static const char *const names[OP_MILTER_M_COUNT] = {"connect", "helo", "mail", "rcpt",
                                                         "data",    "eom",  "eoh"};
    for (int i = 0; name != NULL && i < OP_MILTER_M_COUNT; i++)
        if (strcmp(name, names[i]) == 0)
            return i;
    return -1;
}

int op_milter_macro_name_valid(const char *name)
{
    if (name == NULL || name[0] == '\0')
        return 0;
    if (name[1] == '\0')
        return name[0] > ' ' && name[0] < 0x7f && name[0] != '{' && name[0] != '}';
    size_t n = strlen(name);
    if (name[0] != '{' || name[n - 1] != '}' || n < 3 || n > 64)
        return 0;
    for (size_t i = 1; i < n - 1; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return 1;
}

/* ---- encoders ---- */

static size_t packet(char *out, size_t cap, char cmd, const char *data, size_t len)
{
    if (cap < 5 + len || len > UINT32_MAX - 1)
        return 0;
    put32(out, (uint32_t)(len + 1));
    out[4] = cmd;
    if (len > 0)
        memcpy(out + 5, data, len);
    return 5 + len;
}

/* Copies s into dst as one NUL-terminated string of at most max bytes
 * (plus NUL), control characters other than TAB replaced with spaces.
 * Returns the bytes written including the NUL. */
static size_t put_text(char *dst, const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = max;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        dst[i] = (ch < 0x20 && ch != '\t') || ch == 0x7f ? ' ' : (char)ch;
    }
    dst[n] = '\0';
    return n + 1;
}

size_t op_milter_encode_simple(char *out, size_t cap, char reply)
{
    return packet(out, cap, reply, NULL, 0);
}

size_t op_milter_encode_optneg(char *out, size_t cap, const op_milter_options_t *o,
                               const char *const symlists[OP_MILTER_M_COUNT])
{
    char data[12 + OP_MILTER_M_COUNT * (4 + 1024)];
    put32(data, o->version);
    put32(data + 4, o->actions);
    put32(data + 8, o->protocol);
    size_t len = 12;
    for (int st = 0; symlists != NULL && st < OP_MILTER_M_COUNT; st++) {
        if (symlists[st] == NULL)
            continue;
        put32(data + len, (uint32_t)st);
        len += 4;
        len += put_text(data + len, symlists[st], OP_MILTER_SYMLIST_MAX);
    }
    return packet(out, cap, OP_MILTER_R_OPTNEG, data, len);
}

/* libmilter refuses reply texts over 980 bytes; so do we, by cutting. */
#define MAX_REPLY_TEXT 900

size_t op_milter_encode_replycode(char *out, size_t cap, int code, const char *status,
                                  const char *text)
{
    if (code < 400 || code > 599 || status == NULL || status[0] != (char)('0' + code / 100))
        return 0;
    char line[16 + 32 + MAX_REPLY_TEXT + 1];
    int n = snprintf(line, sizeof line, "%03d %.31s ", code, status);
    if (n < 0)
        return 0;
    size_t len = (size_t)n + put_text(line + n, text ? text : "", MAX_REPLY_TEXT);
    return packet(out, cap, OP_MILTER_R_REPLYCODE, line, len);
}

size_t op_milter_encode_header(char *out, size_t cap, char reply, uint32_t index,
                               const char *name, const char *value)
{
    char data[4 + 256 + 8192];
    size_t len = 0;
    if (reply == OP_MILTER_R_INSHEADER || reply == OP_MILTER_R_CHGHEADER) {
        put32(data, index);
        len = 4;
    }
    len += put_text(data + len, name, 255);
    len += put_text(data + len, value, 8191);
    return packet(out, cap, reply, data, len);
}

size_t op_milter_encode_string(char *out, size_t cap, char reply, const char *s)
{
    char data[1024];
    size_t len = put_text(data, s, sizeof data - 1);
    return packet(out, cap, reply, data, len);
}
