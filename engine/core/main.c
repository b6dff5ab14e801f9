/* outpostd: command line. */
#include "control/ask.h"
#include "config/config.h"
#include "config/paths.h"
#include "core/daemon.h"
#include "core/log.h"
#include "counters/rocks_guard.h"
#include "lua/testrunner.h"

#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


static const char usage[] =
    "NAME\n"
    "    outpostd - policy engine daemon for outgoing mail\n"
    "\n"
    "SYNOPSIS\n"
    "    outpostd [-c FILE]\n"
    "    outpostd --check [-c FILE]\n"
    "    outpostd test [-c FILE] [busted options] [SPEC...]\n"
    "    outpostd ask ADDRESS [NAME=VALUE...]\n"
    "    outpostd ask --dry-run [-c FILE] [--json] [--service S] [--tenant T] {NAME=VALUE...|-f FILE}\n"
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
    "    It runs in the foreground and logs one line per event and one per\n"
    "    decision (with Postfix's queue_id) to standard error: with the time of day\n"
    "    on a terminal, with syslog priority prefixes under systemd (JOURNAL_STREAM),\n"
    "    with an RFC 3339 time elsewhere; or, as log { target } says, to syslog\n"
    "    (facility mail) or the journal, as text or JSON lines (outpost.conf(5)).\n"
    "\n"
    "    Started as root, it binds its sockets, then becomes the user of the\n"
    "    configuration, with that user's supplementary groups, before it loads any\n"
    "    Lua code; started as root without a user, it warns loudly.\n"
    "\n"
    "    Under systemd (outpostd.service, Type=notify) it tells the manager when it\n"
    "    is ready (every listener bound, the policies loaded), reloading and\n"
    "    stopping, with a status line (generation, connections), and pings the\n"
    "    watchdog from its event loop when WatchdogSec= is set.\n"
    "\n"
    "OPTIONS\n"
    "    -c FILE, --config=FILE\n"
    "        Configuration file (default " OP_CONFIG_DEFAULT ").\n"
    "    -t, --check\n"
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
    "        It is a real request: it counts against the limits.\n"
    "    ask --dry-run [-c FILE] [--json] [--service S] [--tenant T] {NAME=VALUE...|-f FILE}\n"
    "        Explain a request without a running daemon and without side effects:\n"
    "        load the configuration (-c FILE, else " OP_CONFIG_DEFAULT ") and its\n"
    "        policies, run the request in dry-run mode and print every check in\n"
    "        order (id, mode, verdict and why, the lookups it made, cache or\n"
    "        server, with their times) and the action line Postfix would get,\n"
    "        as outpostctl explain does with a running daemon.  Counters are\n"
    "        read, never written: the counters store is opened read-only (also\n"
    "        while a daemon holds it); when it cannot be (Redis unreachable, no\n"
    "        store yet) it says so and the limits are \"not evaluated\".  Only\n"
    "        the request's attributes are given: those Postfix always sends and\n"
    "        you leave out are empty.  -f FILE reads Postfix request dumps\n"
    "        (NAME=VALUE lines, a blank line after each request, # comments, as\n"
    "        in spec/replay/), one explanation per request; - is stdin.  The\n"
    "        service is --service, else the request's policy_context\n"
    "        (SERVICE[:TENANT]), else the configuration's only service.  Exit\n"
    "        status 2 for malformed input, 1 for an unknown service or a broken\n"
    "        configuration.  Lookups fill no cache a daemon shares (this process\n"
    "        has its own).  docs/operations.md, \"Explain\".\n"
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
    "        The configuration: outpost.conf(5).\n"
    "    " OP_LUA_DIR_DEFAULT "/lib/, " OP_LUA_DIR_DEFAULT "/policies/\n"
    "        Libraries and per-service policies as shipped (lua_dir).\n"
    "    " OP_SYSCONF_DIR "/lua/\n"
    "        The site's copies, which override the shipped files (site_lua_dir).\n"
    "    " OP_STATE_DIR "/\n"
    "        State: the counters (state_dir).\n"
    "\n"
    "EXIT STATUS\n"
    "    0 on a clean stop or a passing check or test run, 1 on an error in the\n"
    "    configuration or a policy, or on failed tests, 2 on bad usage.\n"
    "\n"
    "SEE ALSO\n"
    "    outpostctl(8): counters, limits, reload, status.  outpost.conf(5).\n"
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
    } else if (argc >= 1 && strncmp(argv[0], "--config=", 9) == 0) {
        config = argv[0] + 9;
        first = 1;
    }
    if (config == NULL && access(OP_CONFIG_DEFAULT, R_OK) == 0)
        config = OP_CONFIG_DEFAULT;
    /* Without a configuration, the tree next to the binary: build/outpostd
     * in a checkout finds the checkout's lua/. */
    char lua_guess[PATH_MAX] = OP_LUA_DIR_DEFAULT;
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

/* Long options only where a short one would be new: -t stays the
 * historical short form of --check. */
enum { OPT_CONFIG_REFERENCE = 256 };
static const struct option options[] = {
    {"config", required_argument, NULL, 'c'},
    {"check", no_argument, NULL, 't'},
    {"config-reference", no_argument, NULL, OPT_CONFIG_REFERENCE},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    const char *config = OP_CONFIG_DEFAULT;
    int check = 0;

    /* The commands come first and parse their own arguments (busted's
     * options pass through `test` untouched). */
    if (argc >= 2 && strcmp(argv[1], "test") == 0)
        return run_tests(argc - 2, argv + 2);
    if (argc >= 3 && strcmp(argv[1], "ask") == 0 && strcmp(argv[2], "--dry-run") == 0)
        return op_ask_dry_run(OP_CONFIG_DEFAULT, argc - 3, argv + 3);
    if (argc >= 2 && strcmp(argv[1], "ask") == 0) {
        if (argc < 3)
            return bad_usage("%s", "ask needs an ADDRESS");
        return op_ask(argv[2], argc - 3, argv + 3);
    }
    opterr = 0; /* our messages, in our words, with exit status 2 */
    int opt;
    while ((opt = getopt_long(argc, argv, "+:c:thV", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(usage, stdout);
            return 0;
        case 'V':
            printf("outpostd %s\n", OP_VERSION);
            return 0;
        case OPT_CONFIG_REFERENCE:
            op_config_write_reference(stdout);
            return 0;
        case 't':
            check = 1;
            break;
        case 'c':
            config = optarg;
            break;
        case ':':
            return bad_usage("%s needs a FILE", argv[optind - 1]);
        default:
            return bad_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_usage("unknown argument '%s'", argv[optind]);
    if (check)
        return op_daemon_check(config);
    int rc = op_daemon_run(config);
    /* RocksDB threw (counters/rocks_guard.cc): its thread-local clean-up in
     * exit() would assert on the state the exception left. */
    if (op_rocks_guard_fault() != NULL)
        _exit(rc);
    return rc;
}
