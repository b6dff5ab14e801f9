/* The control socket's one exchange (ctl_io.h). */
#include "ctl_io.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int ctl_request(const char *sock, const char *req, size_t len, int json)
{
    /* A daemon that answers before reading everything must not kill us
     * with SIGPIPE: its answer is still there to read. */
    signal(SIGPIPE, SIG_IGN);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock) >= sizeof sa.sun_path) {
        fprintf(stderr, "outpostctl: socket path too long: %s\n", sock);
        return EXIT_USAGE;
    }
    strcpy(sa.sun_path, sock);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        int e = errno;
        if (e == EACCES || e == EPERM) {
            fprintf(stderr, "outpostctl: permission denied on %s: run as root or as a member of "
                            "the admin group (control { group })\n", sock);
            return EXIT_DENIED;
        }
        fprintf(stderr, "outpostctl: cannot reach outpostd at %s: %s\n", sock, strerror(e));
        return EXIT_UNREACHABLE;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(fd, req + off, len - off);
        if (w <= 0)
            break; /* read what the daemon said, if anything */
        off += (size_t)w;
    }
    size_t cap = 65536, got = 0;
    char *ans = malloc(cap);
    for (;;) {
        if (got + 1 == cap) {
            char *bigger = realloc(ans, cap *= 2);
            if (bigger == NULL) {
                fprintf(stderr, "outpostctl: out of memory\n");
                return EXIT_FAILED;
            }
            ans = bigger;
        }
        ssize_t r = read(fd, ans + got, cap - got - 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    ans[got] = '\0';
    char *nl = strchr(ans, '\n');
    if (nl == NULL) {
        fprintf(stderr, "outpostctl: no answer from outpostd at %s\n", sock);
        free(ans);
        return EXIT_UNREACHABLE;
    }
    *nl = '\0';
    if (strcmp(ans, "ok") == 0) {
        fputs(nl + 1, stdout);
        free(ans);
        return EXIT_OK;
    }
    int code = EXIT_FAILED;
    char *msg = ans;
    if (strncmp(ans, "error ", 6) == 0) {
        code = (int)strtol(ans + 6, &msg, 10);
        if (code < 1 || code > 5)
            code = EXIT_FAILED;
        while (*msg == ' ')
            msg++;
    }
    if (json) {
        printf("{\"error\":\"");
        for (const char *p = msg; *p; p++)
            printf(*p == '"' || *p == '\\' ? "\\%c" : "%c", *p);
        printf("\",\"exit\":%d}\n", code);
    }
    fprintf(stderr, "outpostctl: %s\n", msg);
    free(ans);
    return code;
}
