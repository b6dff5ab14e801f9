#include "ctest.h"
#include "lib/strbuf.h"

#include <stdlib.h>

/* Appends past the first allocation many times over: every byte kept,
 * always NUL-terminated. */
CTEST(printf_grows)
{
    op_sb_t b;
    op_sb_init(&b, 8);
    for (int i = 0; i < 1000; i++)
        op_sb_printf(&b, "%04d,", i);
    CHECK_INT(b.n, 5000);
    CHECK_INT(strlen(b.p), 5000);
    CHECK(memcmp(b.p, "0000,0001,", 10) == 0);
    CHECK(memcmp(b.p + 4995, "0999,", 5) == 0);
    free(b.p);
}

/* What a client can put in an address reaches explain's JSON: quotes,
 * control bytes and bytes that are not UTF-8 give valid JSON. */
CTEST(json_escapes_what_a_client_sends)
{
    op_sb_t b;
    op_sb_init(&b, 4);
    op_sb_printf(&b, "[");
    op_sb_json(&b, "q\"u\\o\x01\n\xc3\xbc\xff@x");
    op_sb_printf(&b, ",");
    op_sb_json(&b, NULL);
    op_sb_printf(&b, "]");
    CHECK_STR(b.p, "[\"q\\\"u\\\\o\\u0001\\n\xc3\xbc\\ufffd@x\",\"\"]");
    CHECK_INT(b.n, strlen(b.p));
    free(b.p);
}

/* A long value with the widest escapes fits without truncation. */
CTEST(json_long_value_whole)
{
    char in[4001];
    memset(in, 0x01, 4000);
    in[4000] = '\0';
    op_sb_t b;
    op_sb_init(&b, 16);
    op_sb_json(&b, in);
    CHECK_INT(b.n, 2 + 4000 * 6);
    CHECK(b.p[b.n - 1] == '"');
    free(b.p);
}

int main(int argc, char **argv) { return ctest_main(argc, argv); }
