/* Postfix policy request dumps (reqfile.h): one parser for outpostctl and
 * outpostd ask --dry-run. */
#include "lib/reqfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *op_reqfile_bad_attr(const char *s)
{
    const char *eq = strchr(s, '=');
    if (eq == NULL || eq == s)
        return "not NAME=VALUE";
    for (const char *p = s; p < eq; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '-'))
            return "the name has a character Postfix does not send";
    if (strpbrk(s, "\t\r\n") != NULL)
        return "contains a tab or a line end";
    return NULL;
}

static int fail(op_reqfile_t *f, const char *why, size_t line, const char *text)
{
    f->err = why;
    f->err_line = line;
    snprintf(f->err_text, sizeof f->err_text, "%s", text ? text : "");
    return -1;
}

/* The request being read, appended to f once a blank line or the end
 * closes it. */
static int close_request(op_reqfile_t *f, op_reqfile_req_t *cur)
{
    if (cur->n == 0)
        return 0;
    op_reqfile_req_t *r = realloc(f->reqs, (f->n + 1) * sizeof *r);
    if (r == NULL)
        return -1;
    f->reqs = r;
    f->reqs[f->n++] = *cur;
    *cur = (op_reqfile_req_t){NULL, 0, 0, ""};
    return 0;
}

int op_reqfile_parse(char *text, size_t len, size_t max_attrs, op_reqfile_t *f)
{
    memset(f, 0, sizeof *f);
    if (memchr(text, '\0', len) != NULL)
        return fail(f, "a NUL byte: not a request dump", 0, NULL);
    op_reqfile_req_t cur = {NULL, 0, 0, ""};
    size_t lineno = 0;
    for (char *p = text; p != NULL;) {
        char *line = p, *nl = strchr(p, '\n');
        if (nl != NULL) {
            *nl = '\0';
            p = nl + 1;
        } else {
            p = NULL;
        }
        lineno++;
        size_t ll = strlen(line);
        if (ll > 0 && line[ll - 1] == '\r')
            line[--ll] = '\0';
        if (ll == 0) {
            if (close_request(f, &cur) != 0)
                goto oom;
            continue;
        }
        if (*line == '#') {
            /* "# tenant: lm", as spec/replay/ names a listener's tenant */
            const char *t = strstr(line, "tenant:");
            if (t != NULL && cur.n == 0) {
                for (t += 7; *t == ' ';)
                    t++;
                snprintf(cur.tenant, sizeof cur.tenant, "%.*s", (int)strcspn(t, " \t"), t);
            }
            continue;
        }
        const char *why = op_reqfile_bad_attr(line);
        if (why == NULL && cur.n == max_attrs)
            why = "too many attributes in one request";
        if (why != NULL) {
            free(cur.attrs);
            op_reqfile_free(f);
            return fail(f, why, lineno, line);
        }
        if (cur.attrs == NULL && (cur.attrs = malloc(max_attrs * sizeof *cur.attrs)) == NULL)
            goto oom;
        if (cur.n == 0)
            cur.line = lineno;
        cur.attrs[cur.n++] = line;
    }
    if (close_request(f, &cur) != 0)
        goto oom;
    if (f->n == 0)
        return fail(f, "no request in it (NAME=VALUE lines, a blank line after each request)", 0,
                    NULL);
    return 0;
oom:
    free(cur.attrs);
    op_reqfile_free(f);
    return fail(f, "out of memory", 0, NULL);
}

void op_reqfile_free(op_reqfile_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->reqs[i].attrs);
    free(f->reqs);
    f->reqs = NULL;
    f->n = 0;
}
