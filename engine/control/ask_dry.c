/* outpostd ask --dry-run (ask.h): explain.c's dry run on a generation of
 * our own, without a running daemon. */
#include "control/ask.h"

#include "config/config.h"
#include "control/explain.h"
#include "core/log.h"
#include "core/mem.h"
#include "core/services.h"
#include "core/vm.h"
#include "lib/reqfile.h"

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

static char *read_all(const char *path, size_t *len)
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
    *len = n;
    return b;
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
        const char *why = op_reqfile_bad_attr(a);
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
    op_reqfile_t req = {0};
    op_reqfile_req_t one;
    op_reqfile_req_t *blocks = &one;
    size_t nblocks = 1;
    char *text = NULL;
    const char *name = "(arguments)";
    if (file != NULL) {
        name = strcmp(file, "-") == 0 ? "(stdin)" : file;
        size_t len;
        text = read_all(file, &len);
        if (text == NULL) {
            fprintf(stderr, "outpostd ask --dry-run: cannot read %s\n", file);
            free(words);
            return 1;
        }
        if (op_reqfile_parse(text, len, MAX_ATTRS, &req) != 0) {
            if (req.err_line > 0)
                fprintf(stderr, "outpostd ask --dry-run: %s:%zu: %s: '%s'\n", name, req.err_line,
                        req.err, req.err_text);
            else
                fprintf(stderr, "outpostd ask --dry-run: %s: %s\n", name, req.err);
            free(text);
            free(words);
            return 2;
        }
        blocks = req.reqs;
        nblocks = req.n;
    } else {
        one = (op_reqfile_req_t){words, nwords, 0, ""};
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
    op_reqfile_free(&req);
    free(text);
    free(words);
    return rc;
}
