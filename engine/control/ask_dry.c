/* outpostd ask --dry-run (ask.h): explain.c's dry run on a generation of
 * our own, without a running daemon. */
#include "control/ask.h"

#include "config/config.h"
#include "control/explain.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/services.h"
#include "core/vm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ATTRS 1024

typedef struct {
    int done, status;
} result_t;

static void on_explained(char *text, int status, void *data)
{
    result_t *r = data;
    r->done = 1;
    r->status = status;
    if (status != 0)
        fprintf(stderr, "outpostd ask --dry-run: %s\n", text);
    else
        fputs(text, stdout);
    fflush(stdout);
    free(text);
}

static int usage(const char *msg, const char *arg)
{
    fprintf(stderr, "outpostd ask --dry-run: ");
    fprintf(stderr, msg, arg);
    fprintf(stderr, "\nusage: outpostd ask --dry-run [-c FILE] [--json] [--service NAME] "
                    "[--tenant NAME] {NAME=VALUE... | -f FILE | -f -}\n");
    return 2;
}

static const char *bad_attr(const char *s)
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

/* A request: attributes (pointers into the file's text), its first line
 * and the tenant a "# tenant: X" comment names. */
typedef struct {
    char **attrs;
    size_t n;
    size_t line;
    char tenant[128];
} block_t;

static char *read_all(const char *path)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (f == NULL)
        return NULL;
    size_t cap = 65536, n = 0;
    char *b = op_malloc(cap);
    for (size_t r; (r = fread(b + n, 1, cap - n - 1, f)) > 0;) {
        n += r;
        if (n + 1 == cap)
            b = op_realloc(b, cap *= 2);
    }
    if (f != stdin)
        fclose(f);
    b[n] = '\0';
    return b;
}

/* The blocks of text (modified in place), or -1 with the error printed. */
static int parse_blocks(char *text, const char *name, block_t **out, size_t *nout)
{
    block_t *blocks = NULL;
    size_t nb = 0, lineno = 0;
    block_t cur = {op_calloc(MAX_ATTRS, sizeof(char *)), 0, 0, ""};
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
        if (ll == 0 || p == NULL) {
            if (ll > 0 && *line != '#') {
                const char *why = bad_attr(line);
                if (why != NULL) {
                    fprintf(stderr, "outpostd ask --dry-run: %s:%zu: %s: '%.80s'\n", name, lineno,
                            why, line);
                    goto fail;
                }
                if (cur.n == 0)
                    cur.line = lineno;
                cur.attrs[cur.n++] = line;
            }
            if (cur.n > 0) {
                blocks = op_realloc(blocks, (nb + 1) * sizeof *blocks);
                blocks[nb++] = cur;
                cur = (block_t){op_calloc(MAX_ATTRS, sizeof(char *)), 0, 0, ""};
            }
            continue;
        }
        if (*line == '#') {
            const char *t = strstr(line, "tenant:");
            if (t != NULL && cur.n == 0) {
                for (t += 7; *t == ' ';)
                    t++;
                snprintf(cur.tenant, sizeof cur.tenant, "%.*s", (int)strcspn(t, " \t"), t);
            }
            continue;
        }
        const char *why = bad_attr(line);
        if (why == NULL && cur.n == MAX_ATTRS)
            why = "too many attributes in one request";
        if (why != NULL) {
            fprintf(stderr, "outpostd ask --dry-run: %s:%zu: %s: '%.80s'\n", name, lineno, why, line);
            goto fail;
        }
        if (cur.n == 0)
            cur.line = lineno;
        cur.attrs[cur.n++] = line;
    }
    free(cur.attrs);
    if (nb == 0) {
        fprintf(stderr, "outpostd ask --dry-run: %s: no request in it (NAME=VALUE lines, a blank "
                        "line after each request)\n", name);
        free(blocks);
        return -1;
    }
    *out = blocks;
    *nout = nb;
    return 0;
fail:
    free(cur.attrs);
    for (size_t i = 0; i < nb; i++)
        free(blocks[i].attrs);
    free(blocks);
    return -1;
}

int op_ask_dry_run(const char *default_config, int argc, char **argv)
{
    const char *config = default_config, *service = NULL, *tenant = NULL, *file = NULL;
    int json = 0;
    char **words = op_calloc((size_t)argc + 1, sizeof *words);
    size_t nwords = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char **opt = NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0)
            opt = &config;
        else if (strcmp(a, "--service") == 0)
            opt = &service;
        else if (strcmp(a, "--tenant") == 0)
            opt = &tenant;
        else if (strcmp(a, "-f") == 0 || strcmp(a, "--file") == 0)
            opt = &file;
        if (opt != NULL) {
            if (i + 1 >= argc) {
                free(words);
                return usage("option '%s' needs a value", a);
            }
            *opt = argv[++i];
            continue;
        }
        if (a[0] == '-') {
            free(words);
            return usage("unknown option '%s'", a);
        }
        const char *why = bad_attr(a);
        if (why != NULL) {
            fprintf(stderr, "outpostd ask --dry-run: '%s': %s\n", a, why);
            free(words);
            return 2;
        }
        words[nwords++] = argv[i];
    }
    if ((file != NULL) == (nwords > 0)) {
        free(words);
        return usage("%s", file ? "give NAME=VALUE words or -f FILE, not both"
                                : "no request: give NAME=VALUE words, or -f FILE (- for stdin)");
    }
    block_t *blocks = NULL;
    size_t nblocks = 0;
    char *text = NULL;
    const char *name = "(arguments)";
    if (file != NULL) {
        name = strcmp(file, "-") == 0 ? "(stdin)" : file;
        text = read_all(file);
        if (text == NULL) {
            fprintf(stderr, "outpostd ask --dry-run: cannot read %s\n", file);
            free(words);
            return 1;
        }
        if (parse_blocks(text, name, &blocks, &nblocks) != 0) {
            free(text);
            free(words);
            return 2;
        }
    } else {
        blocks = op_calloc(1, sizeof *blocks);
        blocks[0] = (block_t){words, nwords, 0, ""};
        words = NULL;
        nblocks = 1;
    }

    char err[2048];
    int rc = 0;
    op_config_t *cfg = op_config_load(config, err, sizeof err);
    if (cfg == NULL) {
        fprintf(stderr, "outpostd ask --dry-run: %s\n", err);
        rc = 1;
        goto out;
    }
    /* what it does goes to stdout; the log keeps to notices and worse */
    op_log_set_level(OP_LOG_NOTICE);
    uv_loop_t *loop = uv_default_loop();
    op_services_private_state = 2; /* the daemon's counters, read-only; no control socket */
    if (op_services_start(loop, cfg, err, sizeof err) != 0) {
        fprintf(stderr, "outpostd ask --dry-run: %s\n", err);
        op_services_stop();
        op_config_free(cfg);
        rc = 1;
        goto out;
    }
    if (op_services->counters_unavailable[0] != '\0')
        fprintf(stderr, "outpostd ask --dry-run: the counts are not available (%s): limits are "
                        "reported as not evaluated\n", op_services->counters_unavailable);
    /* no protocol reader: only the policy request runs, never a milter phase */
    op_gen_t *gen = op_gen_create(cfg, 1, NULL, err, sizeof err);
    if (gen == NULL) {
        fprintf(stderr, "outpostd ask --dry-run: %s\n", err);
        op_services_stop();
        uv_run(loop, UV_RUN_NOWAIT);
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < nblocks; i++) {
        if (nblocks > 1 && !json)
            printf("%s== request %zu (%s:%zu)\n", i ? "\n" : "", i + 1, name, blocks[i].line);
        fflush(stdout);
        result_t r = {0, 0};
        const char *t = tenant ? tenant : (blocks[i].tenant[0] ? blocks[i].tenant : NULL);
        op_explain_run(loop, gen, service, t, blocks[i].attrs, blocks[i].n, json, on_explained, &r);
        while (!r.done && uv_run(loop, UV_RUN_ONCE) != 0)
            ;
        if (!r.done) {
            fprintf(stderr, "outpostd ask --dry-run: the request waited for something that never came\n");
            rc = 1;
            break;
        }
        if (r.status != 0 && rc == 0)
            rc = r.status;
    }
    op_gen_unref(gen);
    op_services_stop();
    uv_run(loop, UV_RUN_NOWAIT);
out:
    for (size_t i = 0; i < nblocks; i++)
        free(blocks[i].attrs);
    free(blocks);
    free(text);
    free(words);
    return rc;
}
