/* The milter protocol, version 6 (Sendmail's libmilter, Postfix's
 * smtpd_milters): a pure codec over buffers, no I/O.
 *
 * A packet is a 4-byte big-endian length, a command byte and length-1 bytes
 * of data.  The parser is incremental like the policy codec: the caller
 * keeps a connection's unconsumed bytes in one buffer and calls
 * op_milter_parse() whenever more arrive.  It decodes one packet into an
 * op_milter_msg_t whose strings point into the caller's buffer, and it is
 * an explicit state machine over the session: a command the MTA may not
 * send in the current state (RCPT before MAIL, a header after the end of
 * headers, anything before option negotiation) is an error like a
 * malformed packet, and the caller closes the connection.
 *
 * Bounds: a packet longer than max_packet, a macro packet with more than
 * max_macros pairs, or a MAIL/RCPT with more than OP_MILTER_MAX_ARGS
 * arguments is an error. */
#ifndef OP_PROTO_MILTER_H
#define OP_PROTO_MILTER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define OP_MILTER_VERSION 6
#define OP_MILTER_MAX_PACKET_DEFAULT (256 * 1024) /* Postfix's body chunks are at most 64 KiB */
#define OP_MILTER_MAX_MACROS_DEFAULT 64
#define OP_MILTER_MAX_ARGS 16

/* Commands, MTA to filter (SMFIC_*). */
enum {
    OP_MILTER_ABORT = 'A',
    OP_MILTER_BODY = 'B',
    OP_MILTER_CONNECT = 'C',
    OP_MILTER_MACRO = 'D',
    OP_MILTER_EOM = 'E', /* end of body: end of message */
    OP_MILTER_HELO = 'H',
    OP_MILTER_QUIT_NC = 'K', /* quit, a new connection follows on this one */
    OP_MILTER_HEADER = 'L',
    OP_MILTER_MAIL = 'M',
    OP_MILTER_EOH = 'N',
    OP_MILTER_OPTNEG = 'O',
    OP_MILTER_QUIT = 'Q',
    OP_MILTER_RCPT = 'R',
    OP_MILTER_DATA = 'T',
    OP_MILTER_UNKNOWN = 'U', /* an SMTP command the MTA does not know */
};

/* Replies, filter to MTA (SMFIR_*). */
enum {
    OP_MILTER_R_ADDRCPT = '+',
    OP_MILTER_R_DELRCPT = '-',
    OP_MILTER_R_ADDRCPT_PAR = '2',
    OP_MILTER_R_ACCEPT = 'a',
    OP_MILTER_R_REPLBODY = 'b',
    OP_MILTER_R_CONTINUE = 'c',
    OP_MILTER_R_DISCARD = 'd',
    OP_MILTER_R_CHGFROM = 'e',
    OP_MILTER_R_ADDHEADER = 'h',
    OP_MILTER_R_INSHEADER = 'i',
    OP_MILTER_R_CHGHEADER = 'm',
    OP_MILTER_R_OPTNEG = 'O',
    OP_MILTER_R_PROGRESS = 'p',
    OP_MILTER_R_QUARANTINE = 'q',
    OP_MILTER_R_REJECT = 'r',
    OP_MILTER_R_SKIP = 's',
    OP_MILTER_R_TEMPFAIL = 't',
    OP_MILTER_R_REPLYCODE = 'y',
};

/* Actions the filter may take (SMFIF_*), offered by the MTA at negotiation. */
enum {
    OP_MILTER_F_ADDHDRS = 0x1,
    OP_MILTER_F_CHGBODY = 0x2,
    OP_MILTER_F_ADDRCPT = 0x4,
    OP_MILTER_F_DELRCPT = 0x8,
    OP_MILTER_F_CHGHDRS = 0x10,
    OP_MILTER_F_QUARANTINE = 0x20,
    OP_MILTER_F_CHGFROM = 0x40,
    OP_MILTER_F_ADDRCPT_PAR = 0x80,
    OP_MILTER_F_SETSYMLIST = 0x100,
};

/* Protocol steps (SMFIP_*): "don't send me X" and "X needs no reply". */
enum {
    OP_MILTER_P_NOCONNECT = 0x1,
    OP_MILTER_P_NOHELO = 0x2,
    OP_MILTER_P_NOMAIL = 0x4,
    OP_MILTER_P_NORCPT = 0x8,
    OP_MILTER_P_NOBODY = 0x10,
    OP_MILTER_P_NOHDRS = 0x20,
    OP_MILTER_P_NOEOH = 0x40,
    OP_MILTER_P_NR_HDR = 0x80,
    OP_MILTER_P_NOUNKNOWN = 0x100,
    OP_MILTER_P_NODATA = 0x200,
    OP_MILTER_P_SKIP = 0x400,
    OP_MILTER_P_RCPT_REJ = 0x800,
    OP_MILTER_P_NR_CONN = 0x1000,
    OP_MILTER_P_NR_HELO = 0x2000,
    OP_MILTER_P_NR_MAIL = 0x4000,
    OP_MILTER_P_NR_RCPT = 0x8000,
    OP_MILTER_P_NR_DATA = 0x10000,
    OP_MILTER_P_NR_UNKN = 0x20000,
    OP_MILTER_P_NR_EOH = 0x40000,
    OP_MILTER_P_NR_BODY = 0x80000,
    OP_MILTER_P_HDR_LEADSPC = 0x100000,
};

/* Macro stages (SMFIM_*), for the symbol lists of the negotiation reply. */
enum {
    OP_MILTER_M_CONNECT = 0,
    OP_MILTER_M_HELO = 1,
    OP_MILTER_M_MAIL = 2,
    OP_MILTER_M_RCPT = 3,
    OP_MILTER_M_DATA = 4,
    OP_MILTER_M_EOM = 5,
    OP_MILTER_M_EOH = 6,
    OP_MILTER_M_COUNT = 7,
};

/* The longest symbol list of one stage in the negotiation reply. */
#define OP_MILTER_SYMLIST_MAX 1000

/* "connect", "helo", "mail", "rcpt", "data", "eoh", "eom" -> OP_MILTER_M_*;
 * -1 for anything else. */
int op_milter_stage(const char *name);

/* A macro name as MTAs spell them: one printable character other than
 * space, '{' and '}' (i, j, _), or {name} of letters, digits and '_'. */
int op_milter_macro_name_valid(const char *name);

/* Errors, returned negated by op_milter_parse. */
enum {
    OP_MILTER_ELENGTH = 1, /* length 0, or over max_packet */
    OP_MILTER_ECOMMAND,    /* unknown command byte */
    OP_MILTER_EFORMAT,     /* data does not match the command's layout */
    OP_MILTER_EORDER,      /* command not allowed in this state */
    OP_MILTER_EMACROS,     /* too many macros or arguments */
    OP_MILTER_EVERSION,    /* MTA speaks a version below 2 */
};

/* The session states the parser walks through. */
typedef enum {
    OP_MILTER_S_START,    /* nothing yet: OPTNEG must come first */
    OP_MILTER_S_READY,    /* negotiated: CONNECT (or QUIT) */
    OP_MILTER_S_CONNECTED, /* HELO, MAIL, UNKNOWN, QUIT */
    OP_MILTER_S_MAIL,     /* RCPT */
    OP_MILTER_S_RCPT,     /* RCPT, DATA, HEADER, EOH, BODY, EOM */
    OP_MILTER_S_HEADERS,  /* HEADER, EOH, BODY, EOM */
    OP_MILTER_S_BODY,     /* BODY, EOM */
    OP_MILTER_S_CLOSED,   /* after QUIT: nothing more */
} op_milter_state_t;

typedef struct {
    size_t max_packet;
    size_t max_macros;
} op_milter_limits_t;

/* One decoded packet.  Strings are NUL-terminated and point into the
 * caller's buffer: valid until it changes. */
typedef struct {
    char cmd;
    union {
        struct {
            uint32_t version, actions, protocol;
        } optneg;
        struct {
            const char *hostname;
            char family; /* '4', '6', 'L' (unix), 'U' (unknown: no port/address) */
            uint16_t port;
            const char *address;
        } connect;
        struct {
            char stage; /* the command the macros are for */
            size_t n;
            const char *names[OP_MILTER_MAX_MACROS_DEFAULT];
            const char *values[OP_MILTER_MAX_MACROS_DEFAULT];
        } macro;
        struct {
            const char *name;
        } helo;
        struct { /* MAIL and RCPT: args[0] is the address, the rest ESMTP parameters */
            size_t nargs;
            const char *args[OP_MILTER_MAX_ARGS];
        } envelope;
        struct {
            const char *name, *value;
        } header;
        struct { /* BODY and EOM (EOM may carry a last chunk) */
            const char *data;
            size_t len;
        } body;
        struct {
            const char *line;
        } unknown;
    } u;
} op_milter_msg_t;

typedef struct {
    op_milter_limits_t limits;
    op_milter_state_t state;
    int failed; /* an error was returned: it is returned again */
} op_milter_parser_t;

/* limits may be NULL for the defaults; max_macros is capped at
 * OP_MILTER_MAX_MACROS_DEFAULT (the array size in op_milter_msg_t). */
void op_milter_parser_init(op_milter_parser_t *p, const op_milter_limits_t *limits);

/* buf[0..len): the connection's unconsumed bytes, a packet starting at
 * buf[0].  Returns the number of bytes of one complete packet, decoded into
 * out; 0 when more bytes are needed; -OP_MILTER_E* on a malformed packet or
 * a command out of order (the connection must be closed). */
ssize_t op_milter_parse(op_milter_parser_t *p, const char *buf, size_t len, op_milter_msg_t *out);

const char *op_milter_strerror(ssize_t err);
const char *op_milter_state_name(op_milter_state_t s);

/* Whether the MTA waits for a reply to cmd, given the negotiated protocol
 * flags (SMFIP_NR_* / NR_HDR; MACRO, ABORT, QUIT never get one). */
int op_milter_needs_reply(char cmd, uint32_t protocol);

/* The negotiation: what to answer the MTA's OPTNEG.  want_actions are the
 * SMFIF_* the policies may use, skip_steps the SMFIP_NO* steps no policy
 * needs, no_reply the SMFIP_NR_* steps whose answers are always continue.
 * Offered bits the MTA lacks are dropped.  Returns 0, or -OP_MILTER_EVERSION. */
typedef struct {
    uint32_t version, actions, protocol;
} op_milter_options_t;
int op_milter_negotiate(const op_milter_options_t *mta, uint32_t want_actions,
                        uint32_t skip_steps, uint32_t no_reply, op_milter_options_t *out);

/* Encoders: each writes one complete packet into out and returns its
 * length, or 0 when cap is too small.  Texts are cut to fit a packet and
 * control characters in them become spaces (header values keep "\n\t"
 * folding, which milter allows). */
size_t op_milter_encode_simple(char *out, size_t cap, char reply); /* continue, accept, reject, tempfail, discard, progress, skip */
size_t op_milter_encode_optneg(char *out, size_t cap, const op_milter_options_t *o,
                               const char *const symlists[OP_MILTER_M_COUNT]);
/* "550 5.7.1 text": code 4xx/5xx, enhanced status of the same class. */
size_t op_milter_encode_replycode(char *out, size_t cap, int code, const char *status,
                                  const char *text);
size_t op_milter_encode_header(char *out, size_t cap, char reply, uint32_t index,
                               const char *name, const char *value); /* add (index ignored), insert, change */
size_t op_milter_encode_string(char *out, size_t cap, char reply, const char *s); /* quarantine, addrcpt, delrcpt, chgfrom */

#endif
