#include "ctest.h"
#include "lib/dkim_sig.h"
#include "lib/names.h"

static int parse(const char *v, op_dkim_sig_t *sig, char *err)
{
    return op_dkim_sig_parse(v, strlen(v), sig, err, 128);
}

static int span_eq(op_dkim_span_t sp, const char *want)
{
    return sp.p && sp.len == strlen(want) && memcmp(sp.p, want, sp.len) == 0;
}

#define GOOD "v=1; a=rsa-sha256; c=relaxed/simple; d=Example.ORG; s=sel2026;\r\n\t" \
             "t=1700000000; x=1800000000; l=42; i=alice@mail.example.org;\r\n\t"    \
             "h=From:To:Subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\t" \
             "b=dGVzdA==\r\n\t dGVzdA=="

CTEST(parses_every_tag)
{
    op_dkim_sig_t sig;
    char err[128] = "";
    CHECK_INT(parse(GOOD, &sig, err), 0);
    CHECK(span_eq(sig.d, "Example.ORG"));
    CHECK(span_eq(sig.s, "sel2026"));
    CHECK(span_eq(sig.h, "From:To:Subject"));
    CHECK(span_eq(sig.b, "dGVzdA==\r\n\t dGVzdA=="));
    CHECK(span_eq(sig.i, "alice@mail.example.org"));
    CHECK_INT(sig.alg, OP_DKIM_ALG_RSA_SHA256);
    CHECK_INT(sig.hcanon, OP_DKIM_CANON_RELAXED);
    CHECK_INT(sig.bcanon, OP_DKIM_CANON_SIMPLE);
    CHECK(sig.has_l && sig.body_len == 42);
    CHECK(sig.has_t && sig.sig_time == 1700000000);
    CHECK(sig.has_x && sig.expires == 1800000000);
    char key[OP_NAME_MAX + 1];
    CHECK_INT(op_dkim_key_name(&sig, key, sizeof key), (int)strlen("sel2026._domainkey.example.org"));
    CHECK_STR(key, "sel2026._domainkey.example.org");
}

CTEST(defaults_and_spacing)
{
    op_dkim_sig_t sig;
    char err[128] = "";
    /* FWS around names, '=' and values; a trailing ';'; an unknown tag; c= absent */
    CHECK_INT(parse(" v = 1 ;a=ed25519-sha256;d=example.org ; s=ed;h=from;bh=x;b=y;zz=what ever;", &sig, err), 0);
    CHECK_INT(sig.alg, OP_DKIM_ALG_ED25519_SHA256);
    CHECK_INT(sig.hcanon, OP_DKIM_CANON_SIMPLE);
    CHECK_INT(sig.bcanon, OP_DKIM_CANON_SIMPLE);
    CHECK(!sig.has_l && !sig.has_t && !sig.has_x);
    CHECK(span_eq(sig.d, "example.org"));
    /* c=relaxed alone: the body is simple (3.5) */
    CHECK_INT(parse("v=1;a=rsa-sha256;c=relaxed;d=e.org;s=s;h=From;bh=x;b=y", &sig, err), 0);
    CHECK_INT(sig.hcanon, OP_DKIM_CANON_RELAXED);
    CHECK_INT(sig.bcanon, OP_DKIM_CANON_SIMPLE);
    /* bare LF folding, as Postfix hands headers to a milter */
    CHECK_INT(parse("v=1; a=rsa-sha256; d=e.org; s=s;\n\th=From; bh=x; b=y", &sig, err), 0);
}

CTEST(refusals)
{
    static const struct {
        const char *in, *why;
    } bad[] = {
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x", "no b= tag"},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;b=y", "no bh= tag"},
        {"a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y", "no v= tag"},
        {"v=2;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y", "v= is not 1"},
        {"v=1;a=rsa-md5;d=e.org;s=s;h=From;bh=x;b=y", "unknown a= algorithm"},
        {"v=1;a=rsa-sha256;c=loose;d=e.org;s=s;h=From;bh=x;b=y", "unknown c= canonicalization"},
        {"v=1;a=rsa-sha256;c=relaxed/;d=e.org;s=s;h=From;bh=x;b=y", "unknown c= canonicalization"},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=To:Subject;bh=x;b=y", "h= does not sign From"},
        {"v=1;a=rsa-sha256;d=e.org;d=f.org;s=s;h=From;bh=x;b=y", "duplicate tag d"},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y;l=-1", "bad l="},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y;l=99999999999999999999", "bad l="},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y;t=20;x=10", "x= before t="},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y;i=a@evil.org", "i= is not within d="},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y;i=a@xe.org", "i= is not within d="},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y;i=noat", "i= without '@'"},
        {"v=1;a=rsa-sha256;d=e..org;s=s;h=From;bh=x;b=y", "d= is no domain name"},
        {"v=1;a=rsa-sha256;d=e.org;s=a/b;h=From;bh=x;b=y", "s= is no selector"},
        {"v=1;a=rsa-sha256;d=e.org;s=.a;h=From;bh=x;b=y", "s= is no selector"},
        {"v=1;1a=x;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y", "bad tag name at byte 4"},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b", "tag b without '='"},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x\x01;b=y", "byte 0x01 in the value of bh"},
        {"v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x\r\nb=y", "byte 0x0d in the value of bh"},
        {"", "no v= tag"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        op_dkim_sig_t sig;
        char err[128] = "";
        int rc = parse(bad[k].in, &sig, err);
        if (rc != -1 || strcmp(err, bad[k].why) != 0)
            fprintf(stderr, "  case %zu: rc=%d err=%s\n", k, rc, err);
        CHECK_INT(rc, -1);
        CHECK_STR(err, bad[k].why);
    }
}

CTEST(i_below_d_and_rsa_sha1)
{
    op_dkim_sig_t sig;
    char err[128] = "";
    CHECK_INT(parse("v=1;a=rsa-sha1;d=e.org;s=s;h=From;bh=x;b=y;i=@sub.E.org", &sig, err), 0);
    CHECK_INT(sig.alg, OP_DKIM_ALG_RSA_SHA1);
    CHECK_INT(parse("v=1;a=rsa-sha256;d=e.org;s=s;h=From;bh=x;b=y;i=\"a;b\"@e.org", &sig, err), -1);
}

CTEST(long_key_name_refused)
{
    char buf[600];
    char sel[300];
    memset(sel, 'a', 250);
    sel[250] = 0;
    snprintf(buf, sizeof buf, "v=1;a=rsa-sha256;d=e.org;s=%s;h=From;bh=x;b=y", sel);
    op_dkim_sig_t sig;
    char err[128] = "";
    CHECK_INT(parse(buf, &sig, err), -1);
    CHECK_STR(err, "s= is no selector");
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
