/* outpostctl -c FILE: where the daemon of FILE listens for control
 * commands.  Only two keys matter (control { socket } and daemon
 * { state_dir }), so this reads the block syntax of docs/config.md just far
 * enough to find them, instead of linking the engine's parser and with it
 * every library the daemon needs.  A file the daemon would refuse is not
 * diagnosed here: `outpostd --check` does that. */
#include "ctl_conf.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_FILE (1 << 20) /* the daemon's own bound on a config file */

typedef struct {
    const char *p, *end;
    char tok[PATH_MAX];
    int quoted;
} lex_t;

static int special(int c)
{
    return c == '{' || c == '}' || c == '=' || c == ';' || c == ',' || c == '[' || c == ']' ||
           c == '#' || c == '"';
}

/* The next token in l->tok: one of the special characters, a quoted
 * string (unescaped) or a word; newlines end a value, so "\n" is a token
 * too.  0 at the end of the file. */
static int next(lex_t *l)
{
    l->quoted = 0;
    for (;;) {
        while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\r'))
            l->p++;
        if (l->p < l->end && *l->p == '#') {
            while (l->p < l->end && *l->p != '\n')
                l->p++;
            continue;
        }
        break;
    }
    if (l->p >= l->end)
        return 0;
    size_t n = 0;
    if (*l->p == '"') {
        l->quoted = 1;
        for (l->p++; l->p < l->end && *l->p != '"' && *l->p != '\n'; l->p++) {
            char c = *l->p;
            if (c == '\\' && l->p + 1 < l->end) {
                c = *++l->p;
                c = c == 'n' ? '\n' : c == 't' ? '\t' : c;
            }
            if (n + 1 < sizeof l->tok)
                l->tok[n++] = c;
        }
        if (l->p < l->end && *l->p == '"')
            l->p++;
    } else if (*l->p == '\n' || special((unsigned char)*l->p)) {
        l->tok[n++] = *l->p++;
    } else {
        /* A word; a [...] inside it (tcp:[::1]:25) is part of it. */
        while (l->p < l->end && !isspace((unsigned char)*l->p) &&
               (!special((unsigned char)*l->p) || (*l->p == '[' && n > 0))) {
            if (*l->p == '[')
                while (l->p < l->end && *l->p != ']' && *l->p != '\n' && n + 1 < sizeof l->tok)
                    l->tok[n++] = *l->p++;
            if (l->p < l->end && n + 1 < sizeof l->tok)
                l->tok[n++] = *l->p;
            l->p++;
        }
    }
    l->tok[n] = '\0';
    return 1;
}

static int is(const lex_t *l, const char *s)
{
    return !l->quoted && strcmp(l->tok, s) == 0;
}

/* path made absolute against dir, the directory of the config file. */
static void absolute(char *out, size_t len, const char *dir, const char *path)
{
    int n = path[0] == '/' ? snprintf(out, len, "%s", path) : snprintf(out, len, "%s/%s", dir, path);
    if (n < 0 || (size_t)n >= len)
        out[0] = '\0'; /* too long for a unix socket anyway */
}

int ctl_conf_socket(const char *file, const char *default_state_dir, char *out, size_t outlen,
                    char *err, size_t errlen)
{
    FILE *f = fopen(file, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot read %s: %s", file, strerror(errno));
        return -1;
    }
    char *text = malloc(MAX_FILE);
    size_t len = text ? fread(text, 1, MAX_FILE, f) : 0;
    fclose(f);
    if (text == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    char real[PATH_MAX], dir[PATH_MAX];
    if (realpath(file, real) == NULL)
        snprintf(real, sizeof real, "%s", file);
    snprintf(dir, sizeof dir, "%s", dirname(real));

    char socket[PATH_MAX] = "", state_dir[PATH_MAX] = "";
    char section[64] = "", key[64] = "";
    int depth = 0, after_eq = 0;
    lex_t l = {.p = text, .end = text + len};
    while (next(&l)) {
        if (is(&l, "{")) {
            depth++;
            key[0] = '\0';
        } else if (is(&l, "}")) {
            if (--depth <= 0)
                depth = 0, section[0] = '\0';
            key[0] = '\0';
            after_eq = 0;
        } else if (is(&l, "=")) {
            after_eq = key[0] != '\0';
        } else if (is(&l, ";") || is(&l, "\n")) {
            key[0] = '\0';
            after_eq = 0;
        } else if (depth == 0) {
            if (section[0] == '\0')
                snprintf(section, sizeof section, "%s", l.tok); /* NAME of `listener NAME {` follows */
        } else if (depth == 1 && after_eq) {
            if (strcmp(section, "control") == 0 && strcmp(key, "socket") == 0)
                absolute(socket, sizeof socket, dir, l.tok);
            else if (strcmp(section, "daemon") == 0 && strcmp(key, "state_dir") == 0)
                absolute(state_dir, sizeof state_dir, dir, l.tok);
            key[0] = '\0';
            after_eq = 0;
        } else if (depth == 1 && key[0] == '\0') {
            snprintf(key, sizeof key, "%s", l.tok);
        }
    }
    free(text);
    int n = socket[0] != '\0' ? snprintf(out, outlen, "%s", socket)
                              : snprintf(out, outlen, "%s/control.sock",
                                         state_dir[0] ? state_dir : default_state_dir);
    if (n < 0 || (size_t)n >= outlen) {
        snprintf(err, errlen, "%s: the control socket's path is too long", file);
        return -1;
    }
    return 0;
}
