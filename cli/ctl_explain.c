/* outpostctl explain (ctl_explain.h).  The daemon does the work (the
 * control socket's explain command, engine/control/explain.c); this side
 * reads the request: NAME=VALUE words, or a file of Postfix policy
 * requests (NAME=VALUE lines, a blank line after each request, '#'
 * comments, as spec/replay/ keeps them; engine/lib/reqfile.c parses it, as
 * for outpostd ask --dry-run), one explanation per request. */
#include "ctl_explain.h"
#include "ctl_io.h"
#include "lib/reqfile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRS 250      /* the control socket takes 256 fields a line */
#define MAX_LINE 65000     /* and 64 KiB a line */

typedef struct {
    char *buf;
    size_t len, cap;
} line_t;

static void add(line_t *l, const char *s)
{
    size_t n = strlen(s);
    if (l->len + n + 2 > l->cap) {
        l->cap = (l->len + n + 2) * 2;
        l->buf = realloc(l->buf, l->cap);
        if (l->buf == NULL) {
            fputs("outpostctl: out of memory\n", stderr);
            exit(EXIT_FAILED);
        }
    }
    memcpy(l->buf + l->len, s, n + 1);
    l->len += n;
}

static int usage(const char *msg, const char *arg)
{
    fprintf(stderr, "outpostctl explain: ");
    fprintf(stderr, msg, arg);
    fprintf(stderr, "\nusage: outpostctl [--json] explain [--service NAME] [--tenant NAME] "
                    "{NAME=VALUE... | -f FILE | -f -}\n");
    return EXIT_USAGE;
}

/* One request to the daemon; its answer printed. */
static int explain_one(const char *sock, int json, const char *service, const char *tenant,
                       char **attrs, size_t n)
{
    line_t l = {NULL, 0, 0};
    add(&l, json ? "json" : "text");
    add(&l, "\texplain\t");
    add(&l, service ? service : "");
    add(&l, "\t");
    add(&l, tenant ? tenant : "");
    for (size_t i = 0; i < n; i++) {
        add(&l, "\t");
        add(&l, attrs[i]);
    }
    add(&l, "\n");
    if (l.len > MAX_LINE) {
        free(l.buf);
        fprintf(stderr, "outpostctl explain: the request is too long (%zu bytes, at most %d)\n",
                l.len, MAX_LINE);
        return EXIT_USAGE;
    }
    fflush(stdout);
    int rc = ctl_request(sock, l.buf, l.len, json);
    fflush(stdout);
    free(l.buf);
    return rc;
}

static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *b = malloc(cap);
    for (size_t r; b != NULL && (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap)
            b = realloc(b, cap *= 2);
    }
    if (f != stdin)
        fclose(f);
    if (b != NULL)
        b[n] = '\0';
    *len = n;
    return b;
}

/* The requests of a file, each explained in turn.  The whole file is
 * parsed before the first is sent: a malformed file explains nothing. */
static int explain_file(const char *sock, int json, const char *service, const char *tenant,
                        const char *path)
{
    size_t len;
    char *text = read_all(path, &len);
    if (text == NULL) {
        fprintf(stderr, "outpostctl explain: cannot read %s\n", path);
        return EXIT_FAILED;
    }
    const char *name = strcmp(path, "-") == 0 ? "(stdin)" : path;
    op_reqfile_t f;
    if (op_reqfile_parse(text, len, MAX_ATTRS, &f) != 0) {
        if (f.err_line > 0)
            fprintf(stderr, "outpostctl explain: %s:%zu: %s: '%s'\n", name, f.err_line, f.err,
                    f.err_text);
        else
            fprintf(stderr, "outpostctl explain: %s: %s\n", name, f.err);
        op_reqfile_free(&f);
        free(text);
        return EXIT_USAGE;
    }
    int worst = EXIT_OK;
    for (size_t i = 0; i < f.n; i++) {
        const op_reqfile_req_t *r = &f.reqs[i];
        if (json == 0)
            printf("%s== request %zu (%s:%zu)\n", i > 0 ? "\n" : "", i + 1, name, r->line);
        int rc = explain_one(sock, json, service, tenant ? tenant : (*r->tenant ? r->tenant : NULL),
                             r->attrs, r->n);
        if (rc != EXIT_OK && worst == EXIT_OK)
            worst = rc;
        if (rc == EXIT_UNREACHABLE || rc == EXIT_DENIED) {
            worst = rc;
            break;
        }
    }
    op_reqfile_free(&f);
    free(text);
    return worst;
}

int ctl_explain(const char *sock, int json, int argc, char **argv)
{
    const char *service = NULL, *tenant = NULL, *file = NULL;
    char **attrs = calloc((size_t)argc + 1, sizeof *attrs);
    size_t n = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **opt = NULL;
        const char *val = NULL;
        if (strcmp(a, "--service") == 0 || strcmp(a, "--tenant") == 0 || strcmp(a, "-f") == 0 ||
            strcmp(a, "--file") == 0) {
            if (i + 1 >= argc)
                return usage("option '%s' needs a value", a);
            val = argv[++i];
            opt = a[2] == 's' ? &service : a[2] == 't' ? &tenant : &file;
        } else if (strncmp(a, "--service=", 10) == 0) {
            opt = &service, val = a + 10;
        } else if (strncmp(a, "--tenant=", 9) == 0) {
            opt = &tenant, val = a + 9;
        } else if (strncmp(a, "--file=", 7) == 0) {
            opt = &file, val = a + 7;
        } else if (a[0] == '-' && strcmp(a, "-") != 0) {
            return usage("unknown option '%s'", a);
        } else {
            const char *why = op_reqfile_bad_attr(a);
            if (why != NULL) {
                fprintf(stderr, "outpostctl explain: '%s': %s\n", a, why);
                return EXIT_USAGE;
            }
            if (n == MAX_ATTRS)
                return usage("%s", "too many attributes");
            attrs[n++] = argv[i];
            continue;
        }
        if (*val == '\0' || strpbrk(val, "\t\r\n") != NULL)
            return usage("bad value for %s", a);
        *opt = val;
    }
    int rc;
    if (file != NULL && n > 0)
        rc = usage("%s", "give NAME=VALUE words or -f FILE, not both");
    else if (file != NULL)
        rc = explain_file(sock, json, service, tenant, file);
    else if (n == 0)
        rc = usage("%s", "no request: give NAME=VALUE words, or -f FILE (- for stdin)");
    else
        rc = explain_one(sock, json, service, tenant, attrs, n);
    free(attrs);
    return rc;
}
