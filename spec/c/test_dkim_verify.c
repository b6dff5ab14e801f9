/* The DKIM verifier (lookup/dkim_verify.c) on messages signed by Debian's
 * python3-dkim with keys made for this run (spec/dkim/make_fixture.py):
 * every verdict as expected, and "pass" exactly where dkimpy's verifier
 * says pass (interoperability).  Headers are fed as Postfix's milter gives
 * them (value without the space after the colon, folded with LF) and the
 * body in small chunks, as it streams. */
#include "ctest.h"
#include "lookup/dkim_verify.h"

#include <stdint.h>

static char fixture[256];

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* The key record of name in keys.txt, or NULL. */
static char *record(const char *name)
{
    char path[300];
    snprintf(path, sizeof path, "%s/keys.txt", fixture);
    FILE *f = fopen(path, "r");
    char line[4096];
    char *found = NULL;
    while (f && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        if (strcmp(line, name) == 0) {
            found = strdup(tab + 1);
            found[strcspn(found, "\n")] = 0;
            break;
        }
    }
    if (f)
        fclose(f);
    return found;
}

/* Runs one message through the verifier; writes "pass fail ..." (top
 * first) into out, each result with "(t)" for a testing key. */
static void verify(const char *name, size_t chunk, char *out, size_t cap, char *reasons, size_t rcap)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s.eml", fixture, name);
    size_t len;
    char *msg = slurp(path, &len);
    CHECK(msg != NULL);
    if (!msg)
        return;
    op_dkim_msg_t *m = op_dkim_msg_new();
    CHECK(m != NULL);
    size_t i = 0;
    while (i < len && !(msg[i] == '\r' && msg[i + 1] == '\n')) {
        size_t colon = i;
        while (msg[colon] != ':')
            colon++;
        size_t v = colon + 1;
        if (msg[v] == ' ')
            v++; /* Postfix's milter drops the one space after the colon */
        size_t e = v;
        for (;;) {
            while (!(msg[e] == '\r' && msg[e + 1] == '\n'))
                e++;
            if (msg[e + 2] == ' ' || msg[e + 2] == '\t')
                e += 2;
            else
                break;
        }
        /* folded with a bare LF, as Postfix hands it over */
        char *val = malloc(e - v + 1);
        size_t n = 0;
        for (size_t k = v; k < e; k++)
            if (msg[k] != '\r')
                val[n++] = msg[k];
        op_dkim_msg_header(m, msg + i, colon - i, val, n);
        free(val);
        i = e + 2;
    }
    i += 2;
    size_t nkeys = op_dkim_msg_eoh(m);
    for (size_t k = 0; k < nkeys; k++) {
        const char *key = op_dkim_msg_key(m, k);
        if (strcmp(key, "sel._domainkey.slow.inst.test") == 0 ||
            strcmp(key, "sel._domainkey.servfail.test") == 0) {
            op_dkim_msg_set_key(m, k, OP_DKIM_KEY_TEMPFAIL, NULL, 0);
            continue;
        }
        char *rec = record(key);
        if (rec)
            op_dkim_msg_set_key(m, k, OP_DKIM_KEY_OK, rec, strlen(rec));
        else
            op_dkim_msg_set_key(m, k, OP_DKIM_KEY_NONE, NULL, 0);
        free(rec);
    }
    while (i < len) {
        size_t n = len - i < chunk ? len - i : chunk;
        op_dkim_msg_body(m, msg + i, n);
        i += n;
    }
    const op_dkim_verdict_t *vs;
    size_t nv = op_dkim_msg_eom(m, &vs);
    out[0] = 0;
    reasons[0] = 0;
    for (size_t k = 0; k < nv; k++) {
        snprintf(out + strlen(out), cap - strlen(out), "%s%s%s", k ? " " : "",
                 op_dkim_result_token(vs[k].result), vs[k].testing ? "(t)" : "");
        snprintf(reasons + strlen(reasons), rcap - strlen(reasons), "%s[d=%s s=%s a=%s] %s",
                 k ? "; " : "", vs[k].d, vs[k].s, vs[k].alg, vs[k].reason);
    }
    op_dkim_msg_free(m);
    free(msg);
}

static const struct {
    const char *name, *want;
} cases[] = {
    {"rsa_relaxed", "pass"},
    {"rsa_simple", "pass"},
    {"rsa_relaxed_relaxed", "pass"},
    {"ed25519", "pass"},
    {"body_altered", "fail"},
    {"header_altered", "fail"},
    {"length_appended", "pass"},
    {"foreign", "pass"},
    {"two_sigs", "pass pass"},
    {"bad_then_good", "fail pass"},
    {"testing_key", "pass(t)"},
    {"s_email", "pass"},
    {"s_other", "permerror"},
    {"revoked", "fail"},
    {"garbage_key", "permerror"},
    {"no_key", "permerror"},
    {"timeout_key", "temperror"},
    {"servfail_key", "temperror"},
    {"unsigned", ""},
    {"expires_later", "pass"},
    {"expired", "fail"},
    {"future_t", "fail"},
};

/* dkimpy's verdicts, "pass"/"fail" per signature */
static void dkimpy(const char *name, char *out, size_t cap)
{
    char path[300];
    snprintf(path, sizeof path, "%s/verdicts.txt", fixture);
    FILE *f = fopen(path, "r");
    char line[512];
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        char *tab = strchr(line, '\t');
        if (!tab)
            continue;
        *tab = 0;
        if (strcmp(line, name) == 0) {
            snprintf(out, cap, "%s", tab + 1);
            out[strcspn(out, "\n")] = 0;
        }
    }
    if (f)
        fclose(f);
}

static void run_table(size_t chunk)
{
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char got[128], why[1024], theirs[128];
        verify(cases[k].name, chunk, got, sizeof got, why, sizeof why);
        if (strcmp(got, cases[k].want) != 0)
            fprintf(stderr, "  %s: got \"%s\" want \"%s\" (%s)\n", cases[k].name, got,
                    cases[k].want, why);
        CHECK_STR(got, cases[k].want);
        /* interoperability: pass where dkimpy says pass, and only there */
        dkimpy(cases[k].name, theirs, sizeof theirs);
        char ours[128];
        size_t n = 0;
        for (const char *p = got; *p && n + 5 < sizeof ours;) {
            size_t w = strcspn(p, " ");
            int pass = strncmp(p, "pass", 4) == 0;
            n += (size_t)snprintf(ours + n, sizeof ours - n, "%s%s", n ? " " : "", pass ? "pass" : "fail");
            p += w;
            while (*p == ' ')
                p++;
        }
        ours[n] = 0;
        if (strcmp(ours, theirs) != 0)
            fprintf(stderr, "  %s: ours \"%s\" dkimpy \"%s\"\n", cases[k].name, ours, theirs);
        CHECK_STR(ours, theirs);
    }
}

CTEST(verdicts_body_in_7_byte_chunks) { run_table(7); }
CTEST(verdicts_body_in_64k_chunks) { run_table(65536); }

CTEST(reasons_name_the_failure)
{
    char got[128], why[1024];
    verify("body_altered", 4096, got, sizeof got, why, sizeof why);
    if (!strstr(why, "d=inst.test s=rsa2026 a=rsa-sha256] body hash mismatch"))
        fprintf(stderr, "  %s\n", why);
    CHECK(strstr(why, "d=inst.test s=rsa2026 a=rsa-sha256] body hash mismatch") != NULL);
    verify("revoked", 4096, got, sizeof got, why, sizeof why);
    CHECK(strstr(why, "key revoked") != NULL);
    verify("timeout_key", 4096, got, sizeof got, why, sizeof why);
    CHECK(strstr(why, "DNS timeout") != NULL);
    verify("ed25519", 4096, got, sizeof got, why, sizeof why);
    CHECK(strstr(why, "a=ed25519-sha256") != NULL);
    verify("expired", 4096, got, sizeof got, why, sizeof why);
    CHECK(strstr(why, "signature expired (x=)") != NULL);
    verify("future_t", 4096, got, sizeof got, why, sizeof why);
    CHECK(strstr(why, "signature in the future (t=)") != NULL);
}

/* Keys never set (the caller gave up waiting) are temperror, not a crash;
 * eom twice gives the same verdicts. */
CTEST(pending_keys_and_eom_twice)
{
    op_dkim_msg_t *m = op_dkim_msg_new();
    const char *sig = "v=1; a=rsa-sha256; d=inst.test; s=rsa2026; h=From; bh=AAAA; b=AAAA";
    op_dkim_msg_header(m, "DKIM-Signature", 14, sig, strlen(sig));
    op_dkim_msg_header(m, "From", 4, "a@inst.test", 11);
    CHECK_INT((int)op_dkim_msg_eoh(m), 1);
    CHECK_STR(op_dkim_msg_key(m, 0), "rsa2026._domainkey.inst.test");
    op_dkim_msg_body(m, "hi\r\n", 4);
    const op_dkim_verdict_t *v1, *v2;
    CHECK_INT((int)op_dkim_msg_eom(m, &v1), 1);
    CHECK_INT(v1[0].result, OP_DKIM_TEMPERROR);
    CHECK_INT((int)op_dkim_msg_eom(m, &v2), 1);
    CHECK(v1 == v2);
    /* libopendkim's handle is gone after eom: late calls do nothing */
    op_dkim_msg_header(m, "X-Late", 6, "x", 1);
    CHECK_INT((int)op_dkim_msg_eoh(m), 1);
    op_dkim_msg_body(m, "late\r\n", 6);
    CHECK_INT(v2[0].result, OP_DKIM_TEMPERROR);
    op_dkim_msg_free(m);
}

/* Malformed signatures and key records are verdicts, never crashes. */
CTEST(malformed_inputs)
{
    static const char *sigs[] = {
        "", ";;;", "v=1", "v=1; a=rsa-sha256; d=inst.test; s=x; h=From; bh=!!; b=!!",
        "v=1; a=rsa-sha256; d=; s=; h=; bh=; b=", "\x01\x02\xff", "v=1; l=99999999999999999999999999",
    };
    for (size_t k = 0; k < sizeof sigs / sizeof sigs[0]; k++) {
        op_dkim_msg_t *m = op_dkim_msg_new();
        op_dkim_msg_header(m, "DKIM-Signature", 14, sigs[k], strlen(sigs[k]));
        op_dkim_msg_header(m, "From", 4, "a@inst.test", 11);
        size_t n = op_dkim_msg_eoh(m);
        for (size_t i = 0; i < n; i++)
            op_dkim_msg_set_key(m, i, OP_DKIM_KEY_OK, "v=DKIM1; p=%%%", 14);
        op_dkim_msg_body(m, "x\r\n", 3);
        const op_dkim_verdict_t *v;
        size_t nv = op_dkim_msg_eom(m, &v);
        CHECK(nv >= 1);
        for (size_t i = 0; i < nv; i++)
            CHECK(v[i].result != OP_DKIM_PASS);
        op_dkim_msg_free(m);
    }
}

int main(int argc, char **argv)
{
    char tmpl[] = "/tmp/outpost-dkim.XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(fixture, sizeof fixture, "%s", tmpl);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 spec/dkim/make_fixture.py %s", fixture);
    if (system(cmd) != 0) {
        fprintf(stderr, "spec/dkim/make_fixture.py failed (python3-dkim installed? scripts/deps.sh)\n");
        printf("0 passed, 1 failed\n");
        return 1;
    }
    int rc = ctest_main(argc, argv);
    snprintf(cmd, sizeof cmd, "rm -rf %s", fixture);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", fixture);
    return rc;
}
