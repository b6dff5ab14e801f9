/* The Redis backend's command builder (counters_redis_cmd.c): the RESP
 * bytes of a script call as they go to hiredis: EVALSHA with its SHA in
 * the head room, EVAL with the script in a buffer of its own, integers,
 * binary-safe arguments (CR, LF, NUL), and arguments that outgrow the
 * inline buffer.  No server. */
#include "counters/counters_redis_cmd.h"
#include "ctest.h"

#include <stdlib.h>
#include <string.h>

#define SHA "0123456789abcdef0123456789abcdef01234567"

/* got (len bytes) is want (wlen bytes), shown escaped when not */
static void check_bytes(const char *got, size_t len, const char *want, size_t wlen, int line)
{
    if (got != NULL && len == wlen && memcmp(got, want, len) == 0)
        return;
    fprintf(stderr, "  %s:%d: got %zu bytes, want %zu:\n    got  ", __FILE__, line, got ? len : 0,
            wlen);
    for (size_t i = 0; got != NULL && i < len; i++)
        fprintf(stderr, (unsigned char)got[i] < 32 ? "\\x%02x" : "%c", (unsigned char)got[i]);
    fprintf(stderr, "\n    want ");
    for (size_t i = 0; i < wlen; i++)
        fprintf(stderr, (unsigned char)want[i] < 32 ? "\\x%02x" : "%c", (unsigned char)want[i]);
    fprintf(stderr, "\n");
    ctest_failed_here = 1;
}
#define CHECK_BYTES(got, len, want) check_bytes((got), (len), (want), sizeof(want) - 1, __LINE__)

CTEST(evalsha_with_strings_and_integers)
{
    op_rcmd_t c;
    memset(&c, 0, sizeof c);
    op_rcmd_int(&c, 2);
    op_rcmd_str(&c, "outpost:w:rcpt:alice");
    op_rcmd_str(&c, "");
    op_rcmd_int(&c, -17);
    op_rcmd_int(&c, 0);
    op_rcmd_int(&c, INT64_MIN);
    size_t len;
    char *heap;
    const char *p = op__rcmd_frame(&c, "EVALSHA", SHA, &len, &heap);
    CHECK_BYTES(p, len, "*8\r\n$7\r\nEVALSHA\r\n$40\r\n" SHA "\r\n"
                        "$1\r\n2\r\n$20\r\noutpost:w:rcpt:alice\r\n$0\r\n\r\n$3\r\n-17\r\n"
                        "$1\r\n0\r\n$20\r\n-9223372036854775808\r\n");
    CHECK(heap == NULL);                       /* in the head room */
    CHECK(p > c.buf && p < c.buf + OP_RCMD_HEAD);
    CHECK(c.buf == c.inline_buf);              /* nothing allocated */
    CHECK_INT(c.argc, 6);
    op_rcmd_clear(&c);
    CHECK(c.buf == NULL && c.argc == 0);
}

/* Arguments are counted, not terminated: CR, LF, tab and NUL pass as
 * they are, and an argument written in place (op_rcmd_arg_space) too. */
CTEST(binary_safe_arguments)
{
    op_rcmd_t c;
    memset(&c, 0, sizeof c);
    op_rcmd_arg(&c, "a\r\nb\0c", 6);
    op_rcmd_arg(&c, "\0", 1);
    char *k = op_rcmd_arg_space(&c, 5);
    memcpy(k, "l\ts\n!", 5);
    size_t len;
    char *heap;
    const char *p = op__rcmd_frame(&c, "EVALSHA", SHA, &len, &heap);
    CHECK_BYTES(p, len, "*5\r\n$7\r\nEVALSHA\r\n$40\r\n" SHA "\r\n"
                        "$6\r\na\r\nb\0c\r\n$1\r\n\0\r\n$5\r\nl\ts\n!\r\n");
    CHECK(heap == NULL);
    op_rcmd_clear(&c);
}

/* EVAL (after NOSCRIPT) carries the script, longer than the head room:
 * a buffer of its own; the same command framed again as EVALSHA after. */
CTEST(eval_with_the_script_then_evalsha_again)
{
    op_rcmd_t c;
    memset(&c, 0, sizeof c);
    op_rcmd_int(&c, 0);
    op_rcmd_str(&c, "count");
    char script[200];
    memset(script, 'x', sizeof script - 1);
    script[sizeof script - 1] = '\0';
    memcpy(script, "return 1 --", 11);
    size_t len;
    char *heap;
    const char *p = op__rcmd_frame(&c, "EVAL", script, &len, &heap);
    CHECK(heap != NULL && p == heap);
    char want[400];
    int n = snprintf(want, sizeof want, "*4\r\n$4\r\nEVAL\r\n$199\r\n%s\r\n$1\r\n0\r\n$5\r\ncount\r\n",
                     script);
    check_bytes(p, len, want, (size_t)n, __LINE__);
    free(heap);
    p = op__rcmd_frame(&c, "EVALSHA", SHA, &len, &heap);
    CHECK_BYTES(p, len, "*4\r\n$7\r\nEVALSHA\r\n$40\r\n" SHA "\r\n$1\r\n0\r\n$5\r\ncount\r\n");
    CHECK(heap == NULL);
    op_rcmd_clear(&c);
}

/* Past OP_RCMD_INLINE the arguments move to the heap, whole. */
CTEST(arguments_outgrow_the_inline_buffer)
{
    op_rcmd_t c;
    memset(&c, 0, sizeof c);
    static char big[3000];
    memset(big, 'b', sizeof big);
    op_rcmd_str(&c, "first");
    op_rcmd_arg(&c, big, sizeof big);
    op_rcmd_int(&c, 42);
    CHECK(c.buf != c.inline_buf);
    size_t len;
    char *heap;
    const char *p = op__rcmd_frame(&c, "EVALSHA", SHA, &len, &heap);
    CHECK(heap == NULL);
    const char *head = "*5\r\n$7\r\nEVALSHA\r\n$40\r\n" SHA "\r\n$5\r\nfirst\r\n$3000\r\n";
    size_t hl = strlen(head);
    CHECK_INT(len, hl + sizeof big + strlen("\r\n$2\r\n42\r\n"));
    CHECK(p != NULL && memcmp(p, head, hl) == 0);
    CHECK(p != NULL && memcmp(p + hl, big, sizeof big) == 0);
    CHECK(p != NULL && memcmp(p + hl + sizeof big, "\r\n$2\r\n42\r\n", 10) == 0);
    op_rcmd_clear(&c);
}

/* No arguments: not a call of the script. */
CTEST(no_arguments_no_command)
{
    op_rcmd_t c;
    memset(&c, 0, sizeof c);
    size_t len = 7;
    char *heap = (char *)&c;
    CHECK(op__rcmd_frame(&c, "EVALSHA", SHA, &len, &heap) == NULL);
    CHECK(heap == NULL);
}

int main(int argc, char **argv)
{
    return ctest_main(argc, argv);
}
