/* One message's DKIM verification on libopendkim, the keys handed in by the
 * caller (dkim_verify.h).  No I/O here: libopendkim's own resolver is never
 * reached, because the key-lookup callback answers every key question from
 * the records the caller set. */
#include "lookup/dkim_verify.h"

#include "core/log.h"
#include "core/mem.h"
#include "lib/dkim_sig.h"
#include "lib/names.h"

#include <opendkim/dkim.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[OP_NAME_MAX + 1];
    op_dkim_key_status_t status;
    char *text;
    size_t len;
} key_t_;

struct op_dkim_msg {
    DKIM *dkim;
    int nosig;        /* libopendkim found no signature at end of headers */
    int done;
    int nsigs_seen;   /* DKIM-Signature fields read */
    size_t nkeys;
    key_t_ keys[OP_DKIM_MAX_SIGS];
    size_t nverdicts;
    op_dkim_verdict_t verdicts[OP_DKIM_MAX_SIGS];
    char *line;       /* "Name: value" for dkim_header, reused */
    size_t linecap;
};

static DKIM_LIB *lib;

static key_t_ *find_key(op_dkim_msg_t *m, const char *name)
{
    for (size_t i = 0; i < m->nkeys; i++)
        if (strcmp(m->keys[i].name, name) == 0)
            return &m->keys[i];
    return NULL;
}

/* libopendkim asks for the key of sig: answered from the records set by
 * the caller.  A record that could not be fetched now is answered "not
 * found" so the library goes on with the other signatures (TRYAGAIN would
 * end the whole verification); op_dkim_msg_eom turns that signature's
 * verdict into temperror, since it knows why. */
static DKIM_CBSTAT key_lookup(DKIM *dkim, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
    op_dkim_msg_t *m = dkim_get_user_context(dkim);
    const char *s = (const char *)dkim_sig_getselector(sig);
    const char *d = (const char *)dkim_sig_getdomain(sig);
    if (m == NULL || s == NULL || d == NULL)
        return DKIM_CBSTAT_ERROR;
    char raw[2 * OP_NAME_MAX], name[OP_NAME_MAX + 1];
    int n = snprintf(raw, sizeof raw, "%s._domainkey.%s", s, d);
    if (n < 0 || (size_t)n >= sizeof raw || op_name_normalize(raw, (size_t)n, name, sizeof name) != 0)
        return DKIM_CBSTAT_NOTFOUND;
    key_t_ *k = find_key(m, name);
    if (k == NULL || k->status != OP_DKIM_KEY_OK)
        return DKIM_CBSTAT_NOTFOUND;
    if (k->len + 1 > buflen)
        return DKIM_CBSTAT_ERROR;
    memcpy(buf, k->text, k->len);
    buf[k->len] = '\0';
    return DKIM_CBSTAT_CONTINUE;
}

/* Only the first OP_DKIM_MAX_SIGS signatures cost a key and a public-key
 * operation; the others are ignored (and reported). */
static DKIM_CBSTAT prescreen(DKIM *dkim, DKIM_SIGINFO **sigs, int nsigs)
{
    (void)dkim;
    for (int i = OP_DKIM_MAX_SIGS; i < nsigs; i++)
        dkim_sig_ignore(sigs[i]);
    return DKIM_CBSTAT_CONTINUE;
}

static DKIM_LIB *get_lib(void)
{
    if (lib)
        return lib;
    DKIM_LIB *l = dkim_init(NULL, NULL);
    if (l == NULL) {
        op_log(OP_LOG_ERR, "dkim: libopendkim does not start (dkim_init)");
        return NULL;
    }
    /* DELAYSIGPROC: signatures are processed (keys asked for) at end of
     * message, when the caller has fetched them, not at end of headers. */
    unsigned int flags = DKIM_LIBFLAGS_DELAYSIGPROC;
    dkim_options(l, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags, sizeof flags);
    dkim_set_key_lookup(l, key_lookup);
    dkim_set_prescreen(l, prescreen);
    lib = l;
    return lib;
}

op_dkim_msg_t *op_dkim_msg_new(void)
{
    DKIM_LIB *l = get_lib();
    if (l == NULL)
        return NULL;
    DKIM_STAT st = DKIM_STAT_OK;
    DKIM *dkim = dkim_verify(l, (const unsigned char *)"outpost", NULL, &st);
    if (dkim == NULL) {
        op_log(OP_LOG_ERR, "dkim: dkim_verify: %s", dkim_getresultstr(st));
        return NULL;
    }
    op_dkim_msg_t *m = op_calloc(1, sizeof *m);
    m->dkim = dkim;
    dkim_set_user_context(dkim, m);
    return m;
}

void op_dkim_msg_free(op_dkim_msg_t *m)
{
    if (m == NULL)
        return;
    if (m->dkim)
        dkim_free(m->dkim);
    for (size_t i = 0; i < m->nkeys; i++)
        free(m->keys[i].text);
    free(m->line);
    free(m);
}

/* Reads one DKIM-Signature for the name of its key record; a signature our
 * parser refuses needs no lookup (libopendkim reports it malformed too, or
 * finds no key: permerror either way). */
static void note_signature(op_dkim_msg_t *m, const char *value, size_t vlen)
{
    if (m->nsigs_seen++ >= OP_DKIM_MAX_SIGS)
        return;
    op_dkim_sig_t sig;
    char err[96];
    if (op_dkim_sig_parse(value, vlen, &sig, err, sizeof err) != 0)
        return;
    char name[OP_NAME_MAX + 1];
    if (op_dkim_key_name(&sig, name, sizeof name) < 0 || find_key(m, name))
        return;
    key_t_ *k = &m->keys[m->nkeys++];
    memcpy(k->name, name, strlen(name) + 1);
}

void op_dkim_msg_header(op_dkim_msg_t *m, const char *name, size_t nlen, const char *value,
                        size_t vlen)
{
    if (m->done)
        return;
    if (nlen == 14 && strncasecmp(name, "DKIM-Signature", 14) == 0)
        note_signature(m, value, vlen);
    /* "Name:" + the value with its one leading space back (docs/milter.md),
     * and CRLF for the bare LF Postfix's milter folds with: libopendkim
     * hashes the field as given, and the signer hashed CRLF */
    int space = !(vlen > 0 && (value[0] == ' ' || value[0] == '\t'));
    size_t need = nlen + 2 + 2 * vlen;
    if (need > m->linecap) {
        m->linecap = need;
        m->line = op_realloc(m->line, need);
    }
    memcpy(m->line, name, nlen);
    size_t n = nlen;
    m->line[n++] = ':';
    if (space)
        m->line[n++] = ' ';
    for (size_t i = 0; i < vlen; i++) {
        if (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
            m->line[n++] = '\r';
        m->line[n++] = value[i];
    }
    need = n;
    (void)dkim_header(m->dkim, (u_char *)m->line, need);
}

size_t op_dkim_msg_eoh(op_dkim_msg_t *m)
{
    if (m->done)
        return m->nkeys;
    DKIM_STAT st = dkim_eoh(m->dkim);
    if (st == DKIM_STAT_NOSIG)
        m->nosig = 1;
    return m->nkeys;
}

const char *op_dkim_msg_key(const op_dkim_msg_t *m, size_t i)
{
    return i < m->nkeys ? m->keys[i].name : NULL;
}

void op_dkim_msg_set_key(op_dkim_msg_t *m, size_t i, op_dkim_key_status_t status,
                         const char *text, size_t len)
{
    if (i >= m->nkeys)
        return;
    key_t_ *k = &m->keys[i];
    free(k->text);
    k->text = NULL;
    k->len = 0;
    k->status = status;
    if (status == OP_DKIM_KEY_OK) {
        k->text = op_malloc(len + 1);
        memcpy(k->text, text, len);
        k->text[len] = '\0';
        k->len = len;
    }
}

void op_dkim_msg_body(op_dkim_msg_t *m, const char *buf, size_t len)
{
    if (m->done || m->nosig || len == 0)
        return;
    (void)dkim_body(m->dkim, (u_char *)buf, len);
}

static void copy_cut(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* The verdict of one signature libopendkim processed. */
static void judge(op_dkim_msg_t *m, DKIM_SIGINFO *sig, op_dkim_verdict_t *v)
{
    unsigned int flags = dkim_sig_getflags(sig);
    int err = dkim_sig_geterror(sig);
    const char *a = (const char *)dkim_sig_gettagvalue(sig, false, (u_char *)"a");
    copy_cut(v->d, sizeof v->d, (const char *)dkim_sig_getdomain(sig));
    copy_cut(v->s, sizeof v->s, (const char *)dkim_sig_getselector(sig));
    copy_cut(v->alg, sizeof v->alg, a);
    v->testing = (flags & DKIM_SIGFLAG_TESTKEY) != 0;
    v->reason = "";
    /* a key we could not fetch now: temperror, whatever libopendkim made of
     * the "not found" it was told */
    char raw[2 * OP_NAME_MAX], name[OP_NAME_MAX + 1];
    int n = snprintf(raw, sizeof raw, "%s._domainkey.%s", v->s, v->d);
    if (n > 0 && (size_t)n < sizeof raw &&
        op_name_normalize(raw, (size_t)n, name, sizeof name) == 0) {
        key_t_ *k = find_key(m, name);
        if (k && (k->status == OP_DKIM_KEY_TEMPFAIL || k->status == OP_DKIM_KEY_PENDING) &&
            (flags & DKIM_SIGFLAG_PASSED) == 0) {
            v->result = OP_DKIM_TEMPERROR;
            v->reason = "key record not fetched (DNS timeout or failure)";
            return;
        }
    }
    if (flags & DKIM_SIGFLAG_IGNORE) {
        v->result = OP_DKIM_PERMERROR;
        v->reason = "too many signatures";
        return;
    }
    if ((flags & DKIM_SIGFLAG_PASSED) && dkim_sig_getbh(sig) == DKIM_SIGBH_MATCH) {
        if (a && strcasecmp(a, "rsa-sha1") == 0) {
            /* RFC 8301: rsa-sha1 is no longer a valid signature */
            v->result = OP_DKIM_PERMERROR;
            v->reason = "rsa-sha1 is not accepted (RFC 8301)";
            return;
        }
        v->result = OP_DKIM_PASS;
        return;
    }
    v->result = OP_DKIM_FAIL;
    /* libopendkim reports a body hash mismatch as BADSIG; the body is what
     * an admin wants to hear about */
    if ((err == DKIM_SIGERROR_OK || err == DKIM_SIGERROR_BADSIG) &&
        dkim_sig_getbh(sig) == DKIM_SIGBH_MISMATCH) {
        v->reason = "body hash mismatch";
        return;
    }
    switch (err) {
    case DKIM_SIGERROR_OK:
        if ((flags & DKIM_SIGFLAG_PROCESSED) == 0) {
            v->result = OP_DKIM_PERMERROR;
            v->reason = "signature not processed";
        } else {
            v->reason = "signature mismatch";
        }
        return;
    case DKIM_SIGERROR_BADSIG: v->reason = "signature mismatch"; return;
    case DKIM_SIGERROR_KEYREVOKED: v->reason = "key revoked"; return;
    case DKIM_SIGERROR_EXPIRED: v->reason = "signature expired (x=)"; return;
    case DKIM_SIGERROR_FUTURE: v->reason = "signature in the future (t=)"; return;
    case DKIM_SIGERROR_TOOLARGE_L: v->reason = "l= larger than the body"; return;
    case DKIM_SIGERROR_KEYHASHMISMATCH: v->reason = "key h= does not allow the hash"; return;
    case DKIM_SIGERROR_NOKEY: v->result = OP_DKIM_PERMERROR; v->reason = "no key record"; return;
    case DKIM_SIGERROR_NOTEMAILKEY:
        v->result = OP_DKIM_PERMERROR;
        v->reason = "key record not for email (s=)";
        return;
    case DKIM_SIGERROR_KEYTOOSMALL: v->result = OP_DKIM_PERMERROR; v->reason = "key too small"; return;
    default:
        v->result = OP_DKIM_PERMERROR;
        v->reason = dkim_sig_geterrorstr(err);
        if (v->reason == NULL)
            v->reason = "malformed signature or key record";
        return;
    }
}

size_t op_dkim_msg_eom(op_dkim_msg_t *m, const op_dkim_verdict_t **out)
{
    *out = m->verdicts;
    if (m->done)
        return m->nverdicts;
    m->done = 1;
    if (m->nosig && m->nsigs_seen == 0)
        return 0;
    if (!m->nosig) {
        bool testkey = false;
        (void)dkim_eom(m->dkim, &testkey);
    }
    DKIM_SIGINFO **sigs = NULL;
    int nsigs = 0;
    if (dkim_getsiglist(m->dkim, &sigs, &nsigs) != DKIM_STAT_OK || sigs == NULL)
        nsigs = 0;
    for (int i = 0; i < nsigs && m->nverdicts < OP_DKIM_MAX_SIGS; i++)
        judge(m, sigs[i], &m->verdicts[m->nverdicts++]);
    if (m->nverdicts == 0 && m->nsigs_seen > 0) {
        /* signatures libopendkim could not even list: one verdict for them */
        op_dkim_verdict_t *v = &m->verdicts[m->nverdicts++];
        memset(v, 0, sizeof *v);
        v->result = OP_DKIM_PERMERROR;
        v->reason = "malformed signature";
    }
    /* the verdicts are copies (reasons are static): libopendkim's handle,
     * with its copy of the header, goes now rather than whenever Lua's
     * collector finds the verifier, which does not see this memory */
    dkim_free(m->dkim);
    m->dkim = NULL;
    for (size_t i = 0; i < m->nkeys; i++) {
        free(m->keys[i].text);
        m->keys[i].text = NULL;
    }
    return m->nverdicts;
}

const char *op_dkim_result_token(op_dkim_result_t r)
{
    switch (r) {
    case OP_DKIM_PASS: return "pass";
    case OP_DKIM_FAIL: return "fail";
    case OP_DKIM_TEMPERROR: return "temperror";
    case OP_DKIM_PERMERROR: return "permerror";
    }
    return "permerror";
}
