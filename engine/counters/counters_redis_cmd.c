/* A call of the Redis backend's script, built as the protocol sends it
 * (counters_redis.h, counters_redis_cmd.h): every argument a RESP bulk
 * string written once into the command's buffer (inline up to
 * OP_RCMD_INLINE, no allocation per argument), with room in front for the
 * head, so the command reaches hiredis as one piece. */
#include "counters/counters_redis_cmd.h"

#include "core/mem.h"

#include <stdlib.h>
#include <string.h>

/* len more bytes at the end of the arguments. */
static char *grow(op_rcmd_t *cmd, size_t len)
{
    if (cmd->buf == NULL) {
        cmd->buf = cmd->inline_buf;
        cmd->cap = sizeof cmd->inline_buf;
        cmd->len = OP_RCMD_HEAD;
    }
    if (cmd->len + len > cmd->cap) {
        size_t cap = 2 * cmd->cap > cmd->len + len ? 2 * cmd->cap : cmd->len + len;
        if (cmd->buf == cmd->inline_buf) {
            cmd->buf = op_malloc(cap);
            memcpy(cmd->buf, cmd->inline_buf, cmd->len);
        } else {
            cmd->buf = op_realloc(cmd->buf, cap);
        }
        cmd->cap = cap;
    }
    char *p = cmd->buf + cmd->len;
    cmd->len += len;
    return p;
}

size_t op__rcmd_put_int(char *p, int64_t v)
{
    char t[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        p[k++] = '-';
    while (n > 0)
        p[k++] = t[--n];
    return k;
}

char *op_rcmd_arg_space(op_rcmd_t *cmd, size_t len)
{
    char head[32];
    size_t h = 0;
    head[h++] = '$';
    h += op__rcmd_put_int(head + h, (int64_t)len);
    head[h++] = '\r';
    head[h++] = '\n';
    char *p = grow(cmd, h + len + 2);
    memcpy(p, head, h);
    p[h + len] = '\r';
    p[h + len + 1] = '\n';
    cmd->argc++;
    return p + h;
}

void op_rcmd_arg(op_rcmd_t *cmd, const char *s, size_t len)
{
    memcpy(op_rcmd_arg_space(cmd, len), s, len);
}

void op_rcmd_str(op_rcmd_t *cmd, const char *s)
{
    op_rcmd_arg(cmd, s, strlen(s));
}

void op_rcmd_int(op_rcmd_t *cmd, int64_t v)
{
    char b[24];
    op_rcmd_arg(cmd, b, op__rcmd_put_int(b, v));
}

void op_rcmd_clear(op_rcmd_t *cmd)
{
    if (cmd->buf != cmd->inline_buf)
        free(cmd->buf);
    cmd->buf = NULL;
    cmd->len = cmd->cap = 0;
    cmd->argc = 0;
}

const char *op__rcmd_frame(op_rcmd_t *cmd, const char *verb, const char *body, size_t *len,
                           char **heap)
{
    *heap = NULL;
    if (cmd->buf == NULL)
        return NULL;
    size_t vlen = strlen(verb), blen = strlen(body), args = cmd->len - OP_RCMD_HEAD;
    char head[OP_RCMD_HEAD + 32];
    size_t h = 0;
    head[h++] = '*';
    h += op__rcmd_put_int(head + h, cmd->argc + 2);
    head[h++] = '\r';
    head[h++] = '\n';
    head[h++] = '$';
    h += op__rcmd_put_int(head + h, (int64_t)vlen);
    head[h++] = '\r';
    head[h++] = '\n';
    if (h + vlen + 30 > sizeof head)
        return NULL; /* a verb of the caller's, never this long */
    memcpy(head + h, verb, vlen);
    h += vlen;
    head[h++] = '\r';
    head[h++] = '\n';
    head[h++] = '$';
    h += op__rcmd_put_int(head + h, (int64_t)blen);
    head[h++] = '\r';
    head[h++] = '\n';
    size_t front = h + blen + 2;
    char *p;
    if (front <= OP_RCMD_HEAD) {
        p = cmd->buf + OP_RCMD_HEAD - front;
    } else {
        /* EVAL carries the script itself: a buffer of its own, once */
        p = *heap = op_malloc(front + args);
        memcpy(p + front, cmd->buf + OP_RCMD_HEAD, args);
    }
    memcpy(p, head, h);
    memcpy(p + h, body, blen);
    memcpy(p + h + blen, "\r\n", 2);
    *len = front + args;
    return p;
}
