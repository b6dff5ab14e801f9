/* A minimal C test harness: each test runs in its own forked process (a
 * crash or a sanitizer report fails that test only, and leaks are reported
 * per test by LeakSanitizer at the child's exit).  The binary's last line is
 * "N passed, N failed", which spec/run-all.sh sums over all layers.
 *
 *   CTEST(parse_simple) { CHECK(x == 1); CHECK_STR(got, "want"); }
 *   int main(int argc, char **argv) { return ctest_main(argc, argv); }
 *
 * Run one test by name: build/asan/test_foo parse_simple */
#ifndef OP_CTEST_H
#define OP_CTEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef void (*ctest_fn)(void);
struct ctest_case {
    const char *name;
    ctest_fn fn;
};

#define CTEST_MAX 512
static struct ctest_case ctest_cases[CTEST_MAX];
static int ctest_ncases;
static int ctest_failed_here; /* in the child */

#define CTEST(name)                                                            \
    static void ctest_##name(void);                                            \
    __attribute__((constructor)) static void ctest_register_##name(void)       \
    {                                                                          \
        if (ctest_ncases < CTEST_MAX)                                          \
            ctest_cases[ctest_ncases++] = (struct ctest_case){#name, ctest_##name}; \
    }                                                                          \
    static void ctest_##name(void)

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            ctest_failed_here = 1;                                             \
        }                                                                      \
    } while (0)

#define CHECK_INT(got, want)                                                   \
    do {                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);               \
        if (g_ != w_) {                                                        \
            fprintf(stderr, "  %s:%d: %s: got %lld, want %lld\n", __FILE__,    \
                    __LINE__, #got, g_, w_);                                   \
            ctest_failed_here = 1;                                             \
        }                                                                      \
    } while (0)

#define CHECK_STR(got, want)                                                   \
    do {                                                                       \
        const char *g_ = (got), *w_ = (want);                                  \
        if ((g_ == NULL) != (w_ == NULL) || (g_ && strcmp(g_, w_) != 0)) {     \
            fprintf(stderr, "  %s:%d: %s: got \"%s\", want \"%s\"\n",          \
                    __FILE__, __LINE__, #got, g_ ? g_ : "(null)",              \
                    w_ ? w_ : "(null)");                                       \
            ctest_failed_here = 1;                                             \
        }                                                                      \
    } while (0)

#define CHECK_MEM(got, got_len, want)                                          \
    do {                                                                       \
        const char *w_ = (want);                                               \
        size_t gl_ = (got_len), wl_ = strlen(w_);                              \
        if (gl_ != wl_ || memcmp((got), w_, wl_) != 0) {                       \
            fprintf(stderr, "  %s:%d: %s: got \"%.*s\", want \"%s\"\n",        \
                    __FILE__, __LINE__, #got, (int)gl_, (const char *)(got), w_); \
            ctest_failed_here = 1;                                             \
        }                                                                      \
    } while (0)

static inline int ctest_main(int argc, char **argv)
{
    int passed = 0, failed = 0;
    for (int i = 0; i < ctest_ncases; i++) {
        if (argc > 1) {
            int wanted = 0;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], ctest_cases[i].name) == 0)
                    wanted = 1;
            if (!wanted)
                continue;
        }
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 2;
        }
        if (pid == 0) {
            ctest_cases[i].fn();
            fflush(stdout);
            exit(ctest_failed_here ? 1 : 0); /* exit, not _exit: LeakSanitizer checks at exit */
        }
        int status = 0;
        while (waitpid(pid, &status, 0) < 0)
            ;
        int ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        printf("%s %d - %s%s\n", ok ? "ok" : "not ok", i + 1, ctest_cases[i].name,
               WIFSIGNALED(status) ? " (killed by signal)" : "");
        if (ok)
            passed++;
        else
            failed++;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

/* The value of NAME in build/harness/env (the ports and paths of the
 * harness's servers, written by `spec/harness/harness.sh up`), copied into
 * BUF; a missing file or name ends the test binary with a message saying
 * what to run. */
static inline const char *ctest_harness_env(const char *name, char *buf, size_t size)
{
    FILE *f = fopen("build/harness/env", "r");
    if (f == NULL) {
        fprintf(stderr, "  build/harness/env missing: run spec/harness/harness.sh up\n");
        exit(1);
    }
    char line[1024];
    size_t n = strlen(name);
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, name, n) == 0 && line[n] == '=') {
            size_t len = strlen(line + n + 1);
            if (len >= size)
                len = size - 1; /* cut, as snprintf would */
            memcpy(buf, line + n + 1, len);
            buf[len] = '\0';
            found = 1;
        }
    }
    fclose(f);
    if (!found || buf[0] == '\0') {
        fprintf(stderr, "  build/harness/env has no %s: run spec/harness/harness.sh up\n", name);
        exit(1);
    }
    return buf;
}

static inline int ctest_harness_port(const char *name)
{
    char v[16];
    return atoi(ctest_harness_env(name, v, sizeof v));
}

#endif
