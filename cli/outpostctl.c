/* outpostctl: the operator's command line for a running outpostd, over its
 * control socket (engine/control/control.h has the protocol).  Standalone: links
 * nothing of the engine. */
#include "ctl_conf.h"
#include "ctl_explain.h"
#include "ctl_io.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Compiled in by the Makefile from PREFIX and friends (make install). */
#ifndef OP_SYSCONF_DIR
#define OP_SYSCONF_DIR "/etc/outpost"
#endif
#ifndef OP_STATE_DIR
#define OP_STATE_DIR "/var/lib/outpost"
#endif
#define OP_CONFIG_DEFAULT OP_SYSCONF_DIR "/outpost.conf"
#ifndef OP_VERSION
#define OP_VERSION "0.0.0"
#endif


static const char usage[] =
    "NAME\n"
    "    outpostctl - control a running outpostd\n"
    "\n"
    "SYNOPSIS\n"
    "    outpostctl [-s SOCKET] [--json] status\n"
    "    outpostctl [-s SOCKET] [--json] reload\n"
    "    outpostctl [-s SOCKET] [--json] stats\n"
    "    outpostctl [-s SOCKET] [--json] counter show NAME SUBJECT\n"
    "    outpostctl [-s SOCKET] [--json] counter reset NAME SUBJECT\n"
    "    outpostctl [-s SOCKET] [--json] counter top NAME [COUNT]\n"
    "    outpostctl [-s SOCKET] [--json] limit set NAME SUBJECT MAX [--until TIME] --reason TEXT\n"
    "    outpostctl [-s SOCKET] [--json] limit show [NAME]\n"
    "    outpostctl [-s SOCKET] [--json] limit clear NAME SUBJECT\n"
    "    outpostctl [-s SOCKET] [--json] explain [--service S] [--tenant T] {NAME=VALUE...|-f FILE}\n"
    "    outpostctl --help | --version\n"
    "\n"
    "DESCRIPTION\n"
    "    Talks to outpostd over its control socket (control { socket } in the\n"
    "    configuration).  Only root, the daemon's user and members of the\n"
    "    configured admin group (control { group }) may use it.\n"
    "\n"
    "    NAME is a limit of the configuration (limit NAME { }); SUBJECT is what the\n"
    "    policy counts, in the normal form of lua/lib/site/address.lua (lower case, IDN\n"
    "    domains as A-labels, +tags removed), e.g. alice@example.org.\n"
    "\n"
    "COMMANDS\n"
    "    status\n"
    "        Version, pid, current generation, open connections, uptime, and the\n"
    "        size of the counters on disk, and whether the counters store works\n"
    "        (\"failing: why\" while a write failed or stalled: counting answers\n"
    "        unavailable until it recovers by itself).\n"
    "    reload\n"
    "        Reload configuration, libraries and policies, as SIGHUP does.  Prints\n"
    "        the new generation, or the error (FILE:LINE) and exits 1; on error\n"
    "        the running generation keeps serving.  When the new configuration\n"
    "        changes what only a restart applies (a listener added, removed or\n"
    "        with another protocol, socket mode, owner or group; the daemon's\n"
    "        user, group or state_dir), the rest is applied, each such change is\n"
    "        named, and the exit status is 5.\n"
    "    stats\n"
    "        What the daemon did, for a person: requests and answers (accept,\n"
    "        reject, defer, other, and default actions) per second over the last\n"
    "        minute and since start, the checks that refused most (5xx and 4xx,\n"
    "        by service and check id), the latency of each service (mean, and the\n"
    "        bucket the 99th percentile falls in), and the health of what the\n"
    "        policies depend on: LDAP connections up per server, each lookup's\n"
    "        operations, errors and cache, the counters store.  The same numbers\n"
    "        as the Prometheus endpoint (metrics { listen }), which need not be\n"
    "        configured.  The minute's rates appear 10 s after the start.\n"
    "    counter show NAME SUBJECT\n"
    "        Used, maximum (and where it comes from: default, directory, operator),\n"
    "        remaining, reserved and not yet committed, and when the next slot frees.\n"
    "    counter reset NAME SUBJECT\n"
    "        Forget what SUBJECT used in the window.\n"
    "    counter top NAME [COUNT]\n"
    "        The COUNT subjects (default 10) nearest their maximum.\n"
    "    limit set NAME SUBJECT MAX [--until TIME] --reason TEXT\n"
    "        Give SUBJECT its own maximum, at most the limit's max_override, until\n"
    "        TIME (default: until cleared).  Who set it, when and why are kept and\n"
    "        logged.  TIME is +N[smhd] from now, YYYY-MM-DD[THH:MM] (UTC) or\n"
    "        @EPOCH.  Takes effect on the next request; no reload needed.\n"
    "    limit show [NAME]\n"
    "        Every override (of NAME), with who set it, when and why.\n"
    "    limit clear NAME SUBJECT\n"
    "        Remove an override: SUBJECT is back to the default or directory value.\n"
    "    explain [--service S] [--tenant T] {NAME=VALUE...|-f FILE}\n"
    "        Why would this request be answered so?  Runs it through the daemon's\n"
    "        current generation in dry-run mode and prints every check in order:\n"
    "        its id, its mode (enforce, log-only, off, tag), its verdict (pass,\n"
    "        answer, log-only, skipped, not-reached, off) and the action, the\n"
    "        lookups it made with their answers, times and whether the cache or\n"
    "        the server answered, and last the exact action line Postfix would\n"
    "        get.  Nothing is written: counters are peeked (the limit check shows\n"
    "        the count it saw, the maximum and what the request would add), no\n"
    "        reservation, no transaction link; DNS and LDAP lookups are real and\n"
    "        may fill the caches, the SMTP call-out (MO5) too.  The attributes\n"
    "        are what Postfix sends (request=smtpd_access_policy, protocol_state,\n"
    "        sasl_username, sender, recipient, ...); those left out are empty.\n"
    "        -f FILE reads Postfix request dumps (NAME=VALUE lines, a blank line\n"
    "        after each request, # comments, \"# tenant: T\"), one explanation per\n"
    "        request; - is stdin.  The service is --service, else the request's\n"
    "        policy_context (SERVICE[:TENANT]), else the only one configured.\n"
    "        Exit status 2 for malformed input (FILE:LINE named).  With --json:\n"
    "        one JSON document per request.  docs/operations.md, \"Explain\".\n"
    "\n"
    "OPTIONS\n"
    "    -s SOCKET, --socket=SOCKET\n"
    "        The control socket.  Without it: $OUTPOSTCTL_SOCKET, else the socket\n"
    "        the configuration file names (control { socket }, else\n"
    "        STATE_DIR/control.sock).\n"
    "    -c FILE, --config=FILE\n"
    "        The configuration file whose daemon to talk to (default\n"
    "        " OP_CONFIG_DEFAULT " when it is readable, else\n"
    "        " OP_STATE_DIR "/control.sock is used).\n"
    "    --json\n"
    "        Print the answer as one JSON document.\n"
    "    -h, --help\n"
    "        This text.\n"
    "    -V, --version\n"
    "        Print the version of outpostctl.\n"
    "\n"
    "EXIT STATUS\n"
    "    0  success\n"
    "    1  the command failed (reload error, unknown limit, nothing to clear, ...)\n"
    "    2  bad usage\n"
    "    3  outpostd cannot be reached (not running, wrong socket)\n"
    "    4  permission denied\n"
    "    5  reloaded, but some changes need a restart (named on stderr)\n"
    "\n"
    "EXAMPLES\n"
    "    outpostctl counter show postout_rcpt alice@example.org\n"
    "    outpostctl limit set postout_rcpt alice@example.org 500 --until +7d --reason \"ticket 4711\"\n"
    "    outpostctl --json counter top postout_rcpt 20\n"
    "    outpostctl stats\n"
    "    outpostctl explain --service postout protocol_state=RCPT sasl_username=alice \\\n"
    "        sender=alice@example.org recipient=bob@example.net encryption_protocol=TLSv1.3\n"
    "\n"
    "SEE ALSO\n"
    "    outpostd(8), outpost.conf(5).\n";

static int die_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "outpostctl: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(outpostctl --help lists the commands)\n");
    return EXIT_USAGE;
}

/* TIME of --until as epoch seconds, or -1. */
static long long parse_time(const char *s)
{
    char *end;
    if (s[0] == '@') {
        long long t = strtoll(s + 1, &end, 10);
        return s[1] != '\0' && *end == '\0' && t > 0 ? t : -1;
    }
    if (s[0] == '+') {
        long long n = strtoll(s + 1, &end, 10), mul;
        if (s[1] < '0' || s[1] > '9' || n <= 0)
            return -1;
        if (strcmp(end, "s") == 0 || *end == '\0')
            mul = 1;
        else if (strcmp(end, "m") == 0)
            mul = 60;
        else if (strcmp(end, "h") == 0)
            mul = 3600;
        else if (strcmp(end, "d") == 0)
            mul = 86400;
        else
            return -1;
        return (long long)time(NULL) + n * mul;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(s, "%Y-%m-%d", &tm);
    if (rest == NULL)
        return -1;
    if (*rest == 'T' || *rest == ' ')
        rest = strptime(rest + 1, "%H:%M", &tm);
    if (rest == NULL || *rest != '\0')
        return -1;
    return (long long)timegm(&tm);
}

static int clean_arg(const char *s)
{
    return strpbrk(s, "\t\r\n") == NULL && s[0] != '\0';
}

static const struct option options[] = {
    {"socket", required_argument, NULL, 's'},
    {"config", required_argument, NULL, 'c'},
    {"json", no_argument, NULL, 'j'},
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, 'V'},
    {NULL, 0, NULL, 0},
};

int main(int argc, char **argv)
{
    const char *sock = NULL, *config = NULL;
    int json = 0, opt;
    opterr = 0;
    /* "+": options end at the command, whose own options (--until,
     * --reason) are read below. */
    while ((opt = getopt_long(argc, argv, "+:s:c:hV", options, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(usage, stdout);
            return EXIT_OK;
        case 'V':
            printf("outpostctl %s\n", OP_VERSION);
            return EXIT_OK;
        case 'j':
            json = 1;
            break;
        case 's':
            sock = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case ':':
            return die_usage("option '%s' needs a value", argv[optind - 1]);
        default:
            return die_usage("unknown option '%s'", argv[optind - 1]);
        }
    }
    int i = optind;
    if (sock == NULL && config == NULL) {
        const char *env = getenv("OUTPOSTCTL_SOCKET");
        if (env != NULL && *env != '\0')
            sock = env;
        else if (access(OP_CONFIG_DEFAULT, R_OK) == 0)
            config = OP_CONFIG_DEFAULT;
    }
    char conf_sock[PATH_MAX];
    if (sock == NULL && config != NULL) {
        char err[PATH_MAX + 64];
        if (ctl_conf_socket(config, OP_STATE_DIR, conf_sock, sizeof conf_sock, err, sizeof err) != 0) {
            fprintf(stderr, "outpostctl: %s\n", err);
            return EXIT_USAGE;
        }
        sock = conf_sock;
    }
    if (sock == NULL)
        sock = OP_STATE_DIR "/control.sock";
    if (i >= argc)
        return die_usage("%s", "no command given");
    if (strcmp(argv[i], "explain") == 0)
        return ctl_explain(sock, json, argc - i - 1, argv + i + 1);

    /* The request: positional words, with limit set's options folded in. */
    const char *f[16];
    size_t n = 0;
    const char *until = NULL, *reason = NULL;
    int is_set = argc - i >= 2 && strcmp(argv[i], "limit") == 0 && strcmp(argv[i + 1], "set") == 0;
    for (; i < argc; i++) {
        if (is_set && strcmp(argv[i], "--until") == 0 && i + 1 < argc) {
            until = argv[++i];
        } else if (is_set && strncmp(argv[i], "--until=", 8) == 0) {
            until = argv[i] + 8;
        } else if (is_set && strcmp(argv[i], "--reason") == 0 && i + 1 < argc) {
            reason = argv[++i];
        } else if (is_set && strncmp(argv[i], "--reason=", 9) == 0) {
            reason = argv[i] + 9;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return die_usage("unknown option '%s' (options go before the command, except "
                             "--until and --reason of limit set)", argv[i]);
        } else if (n >= 10) {
            return die_usage("%s", "too many arguments");
        } else if (!clean_arg(argv[i])) {
            return die_usage("bad argument '%s': empty, or contains a tab or line end", argv[i]);
        } else {
            f[n++] = argv[i];
        }
    }
    const char *cmd = f[0], *sub = n > 1 ? f[1] : "";
    char until_buf[32] = "0";
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "reload") == 0 || strcmp(cmd, "stats") == 0) {
        if (n != 1)
            return die_usage("%s takes no arguments", cmd);
    } else if (strcmp(cmd, "counter") == 0) {
        if (!((strcmp(sub, "show") == 0 || strcmp(sub, "reset") == 0) && n == 4) &&
            !(strcmp(sub, "top") == 0 && (n == 3 || n == 4)))
            return die_usage("%s", "usage: counter show|reset NAME SUBJECT, counter top NAME [COUNT]");
    } else if (strcmp(cmd, "limit") == 0) {
        if (strcmp(sub, "set") == 0) {
            if (n != 5)
                return die_usage("%s", "usage: limit set NAME SUBJECT MAX [--until TIME] --reason TEXT");
            if (reason == NULL || !clean_arg(reason))
                return die_usage("%s", "limit set needs --reason TEXT (kept with the override, for the audit)");
            char *end;
            long long max = strtoll(f[4], &end, 10);
            if (*end != '\0' || max < 0)
                return die_usage("MAX must be a whole number >= 0, not '%s'", f[4]);
            if (until != NULL) {
                long long t = parse_time(until);
                if (t < 0)
                    return die_usage("bad --until '%s': want +N[smhd], YYYY-MM-DD[THH:MM] or @EPOCH", until);
                snprintf(until_buf, sizeof until_buf, "%lld", t);
            }
            f[n++] = until_buf;
            f[n++] = reason;
        } else if (strcmp(sub, "show") == 0) {
            if (n > 3)
                return die_usage("%s", "usage: limit show [NAME]");
        } else if (strcmp(sub, "clear") == 0) {
            if (n != 4)
                return die_usage("%s", "usage: limit clear NAME SUBJECT");
        } else {
            return die_usage("%s", "usage: limit set|show|clear ...");
        }
    } else {
        return die_usage("unknown command '%s'", cmd);
    }

    char req[8192];
    size_t len = (size_t)snprintf(req, sizeof req, "%s", json ? "json" : "text");
    for (size_t k = 0; k < n && len < sizeof req; k++)
        len += (size_t)snprintf(req + len, sizeof req - len, "\t%s", f[k]);
    if (len + 1 >= sizeof req)
        return die_usage("%s", "arguments too long");
    req[len++] = '\n';
    return ctl_request(sock, req, len, json);
}
