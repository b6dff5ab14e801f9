/* outpostd: command line. */
#include "control/ask.h"
#include "config/config.h"
#include "core/daemon.h"
#include "core/log.h"
#include "counters/rocks_guard.h"
#include "lua/testrunner.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef OP_CONFIG_DEFAULT
#define OP_CONFIG_DEFAULT "/etc/outpost/outpost.conf"
#endif

static const char usage[] =
    "NAME\n"
    "    outpostd - policy engine daemon for outgoing mail\n"
    "\n"
    "SYNOPSIS\n"
    "    outpostd [-c FILE]\n"
    "    outpostd --check [-c FILE]\n"
    "    outpostd test [-c FILE] [busted options] [SPEC...]\n"
    "    outpostd ask ADDRESS [NAME=VALUE...]\n"
    "    outpostd --config-reference\n"
    "    outpostd --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    outpostd answers Postfix's policy delegation protocol (check_policy_service)\n"
    "    and the milter protocol (smtpd_milters, Sendmail's INPUT_MAIL_FILTER) on\n"
    "    unix and TCP sockets.  Each listener is bound to a service (postout,\n"
    "    mailout, appout-stage1, appout-stage2, or any name the configuration\n"
    "    defines) whose Lua policy decides every request in a coroutine of its own,\n"
    "    with DNS, LDAP, SMTP call-outs and persistent rate counters at hand.\n"
    "    It runs in the foreground and logs to standard error, one line per event\n"
    "    and one per decision, with syslog priority prefixes when standard error is\n"
    "    not a terminal (as systemd expects).\n"
    "\n"
    "    Started as root, it binds its sockets, then becomes the user and group of\n"
    "    the configuration before it loads any Lua code.\n"
    "\n"
    "OPTIONS\n"
    "    -c, --config FILE\n"
    "        Configuration file (default " OP_CONFIG_DEFAULT ").\n"
    "    --check\n"
    "        Load the configuration, the libraries and the policies exactly as a\n"
    "        reload would, report the first error with FILE:LINE and exit non-zero\n"
    "        on failure.  Binds nothing.  Run it before sending SIGHUP.\n"
    "    --config-reference\n"
    "        Print every configuration key with its type, default and meaning\n"
    "        (Markdown; the source of docs/config.md).\n"
    "    -h, --help\n"
    "        This text.\n"
    "    -V, --version\n"
    "        Print the version.\n"
    "\n"
    "COMMANDS\n"
    "    test [-c FILE] [busted options] [SPEC...]\n"
    "        Run busted specs inside the engine, with the real primitives and\n"
    "        coroutines.  Libraries come from the lua_dir of -c FILE, else of\n"
    "        " OP_CONFIG_DEFAULT " if it exists, else from the lua/ directory\n"
    "        beside the binary's (a checkout's build/outpostd finds lua/).\n"
    "        Prints TAP and, last, \"N passed, N failed\".  Exit status 1 when\n"
    "        anything failed.  Example: outpostd test -c conf/outpost.conf spec/lua\n"
    "    ask ADDRESS [NAME=VALUE...]\n"
    "        Send one policy request to a running daemon and print its answer.\n"
    "        ADDRESS is unix:PATH, tcp:HOST:PORT or a socket path.  Attributes\n"
    "        not given get the values of a plain RCPT request.  Example:\n"
    "        outpostd ask tcp:127.0.0.1:10045 sasl_username=alice recipient=bob@example.org\n"
    "\n"
    "SIGNALS\n"
    "    SIGHUP   Reload: build a new generation (configuration, libraries,\n"
    "             policies, lists) beside the running one.  On success it answers\n"
    "             new requests and the old one finishes those in flight; on any\n"
    "             error the running generation stays and the error is logged.\n"
    "             New or removed listeners need a restart.\n"
    "    SIGTERM, SIGINT\n"
    "             Stop accepting, finish the requests in flight (at most\n"
    "             drain_timeout), exit 0.  A second signal answers what is left\n"
    "             with the default action at once.\n"
    "\n"
    "FILES\n"
    "    " OP_CONFIG_DEFAULT "\n"
    "        The configuration (docs/config.md).\n"
    "    LUA_DIR/lib/, LUA_DIR/policies/\n"
    "        Libraries and per-service policies (lua_dir in the configuration).\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on a clean stop or a passing check or test run, 1 on an error in the\n"
    "    configuration or a policy, or on failed tests, 2 on bad usage.\n"
    "\n"
    "SEE ALSO\n"
    "    outpostctl(8) (build/outpostctl --help): counters, limits, reload, status.\n"
    "    docs/services.md, docs/config.md, docs/lua-api.md, docs/milter.md,\n"
    "    docs/limits.md, docs/architecture.md; postconf(5) check_policy_service,\n"
    "    Postfix SMTPD_POLICY_README and MILTER_README.\n";

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "outpostd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'outpostd --help'.\n");
    return 2;
}

/* lua_dir for `outpostd test`: from the config when one is given, so specs
 * test the tree the daemon would run. */
static int run_tests(int argc, char **argv)
{
    const char *config = NULL;
    int first = 0;
    if (argc >= 2 && (strcmp(argv[0], "-c") == 0 || strcmp(argv[0], "--config") == 0)) {
        config = argv[1];
        first = 2;
    }
    if (config == NULL && access(OP_CONFIG_DEFAULT, R_OK) == 0)
        config = OP_CONFIG_DEFAULT;
    /* Without a configuration, the tree next to the binary: build/outpostd
     * in a checkout finds the checkout's lua/. */
    char lua_guess[PATH_MAX] = "/usr/share/outpost/lua";
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        char candidate[PATH_MAX + 16];
        snprintf(candidate, sizeof candidate, "%s/../lua", dirname(self));
        if (realpath(candidate, self) != NULL && access(self, R_OK) == 0)
            snprintf(lua_guess, sizeof lua_guess, "%s", self);
    }
    const char *lua_dir = lua_guess;
    op_config_t *cfg = NULL;
    if (config != NULL) {
        char err[2048];
        cfg = op_config_load(config, err, sizeof err);
        if (cfg == NULL) {
            fprintf(stderr, "outpostd test: %s\n", err);
            return 1;
        }
        lua_dir = cfg->lua_dir;
    }
    int rc = op_test_run(cfg, lua_dir, config, argc - first, argv + first);
    op_config_free(cfg);
    return rc;
}

int main(int argc, char **argv)
{
    const char *config = OP_CONFIG_DEFAULT;
    int check = 0;

    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return run_tests(argc - 2, argv + 2);
    if (argc >= 2 && strcmp(argv[1], "ask") == 0) {
        if (argc < 3)
            return bad_usage("%s", "ask needs an ADDRESS");
        return op_ask(argv[2], argc - 3, argv + 3);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("outpostd %s\n", OP_VERSION);
            return 0;
        } else if (strcmp(a, "--config-reference") == 0) {
            op_config_write_reference(stdout);
            return 0;
        } else if (strcmp(a, "--check") == 0 || strcmp(a, "-t") == 0) {
            check = 1;
        } else if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
            if (++i >= argc)
                return bad_usage("%s needs a FILE", a);
            config = argv[i];
        } else {
            return bad_usage("unknown argument '%s'", a);
        }
    }
    if (check)
        return op_daemon_check(config);
    int rc = op_daemon_run(config);
    /* RocksDB threw (counters/rocks_guard.cc): its thread-local clean-up in
     * exit() would assert on the state the exception left. */
    if (op_rocks_guard_fault() != NULL)
        _exit(rc);
    return rc;
}
