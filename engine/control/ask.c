#include "control/ask.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* A blocking client is right here: one request, one answer, then exit. */

static int connect_to(const char *address)
{
    if (strncmp(address, "tcp:", 4) == 0) {
        char host[256];
        const char *hp = address + 4, *port = strrchr(hp, ':');
        if (port == NULL || (size_t)(port - hp) >= sizeof host) {
            fprintf(stderr, "outpostd ask: %s: expected tcp:HOST:PORT\n", address);
            return -1;
        }
        memcpy(host, hp, (size_t)(port - hp));
        host[port - hp] = '\0';
        char *h = host;
        if (h[0] == '[') { /* [::1] */
            h++;
            h[strlen(h) - 1] = '\0';
        }
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
        if (getaddrinfo(h, port + 1, &hints, &ai) != 0) {
            fprintf(stderr, "outpostd ask: %s: bad address\n", address);
            return -1;
        }
        int fd = socket(ai->ai_family, SOCK_STREAM, 0);
        if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            perror("outpostd ask: connect");
            freeaddrinfo(ai);
            if (fd >= 0)
                close(fd);
            return -1;
        }
        freeaddrinfo(ai);
        return fd;
    }
    const char *path = strncmp(address, "unix:", 5) == 0 ? address + 5 : address;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        fprintf(stderr, "outpostd ask: %s: path too long\n", path);
        return -1;
    }
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        fprintf(stderr, "outpostd ask: connect %s: ", path);
        perror(NULL);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static const char *const defaults[][2] = {
    {"request", "smtpd_access_policy"},
    {"protocol_state", "RCPT"},
    {"protocol_name", "ESMTP"},
    {"client_address", "127.0.0.1"},
    {"client_name", "localhost"},
    {"reverse_client_name", "localhost"},
    {"helo_name", "localhost"},
    {"sender", "sender@example.org"},
    {"recipient", "recipient@example.net"},
    {"recipient_count", "0"},
    {"instance", "0.0.0.0"},
    {"sasl_method", ""},
    {"sasl_username", ""},
    {"encryption_protocol", ""},
    {"policy_context", ""},
};

int op_ask(const char *address, int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strchr(argv[i], '=') == NULL || argv[i][0] == '=' || strchr(argv[i], '\n')) {
            fprintf(stderr, "outpostd ask: %s: expected name=value\n", argv[i]);
            return 2;
        }
    }
    char req[16384];
    size_t len = 0;
    size_t nd = sizeof defaults / sizeof defaults[0];
    for (size_t d = 0; d < nd; d++) {
        int overridden = 0;
        size_t nlen = strlen(defaults[d][0]);
        for (int i = 0; i < argc; i++)
            if (strncmp(argv[i], defaults[d][0], nlen) == 0 && argv[i][nlen] == '=')
                overridden = 1;
        if (!overridden)
            len += (size_t)snprintf(req + len, sizeof req - len, "%s=%s\n", defaults[d][0],
                                    defaults[d][1]);
    }
    for (int i = 0; i < argc && len < sizeof req; i++)
        len += (size_t)snprintf(req + len, sizeof req - len, "%s\n", argv[i]);
    if (len + 2 >= sizeof req) {
        fprintf(stderr, "outpostd ask: request too long\n");
        return 2;
    }
    req[len++] = '\n';

    int fd = connect_to(address);
    if (fd < 0)
        return 1;
    if (write(fd, req, len) != (ssize_t)len) {
        perror("outpostd ask: write");
        close(fd);
        return 1;
    }
    char reply[4096];
    size_t got = 0;
    while (got < sizeof reply - 1) {
        ssize_t n = read(fd, reply + got, sizeof reply - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
        reply[got] = '\0';
        if (strstr(reply, "\n\n"))
            break;
    }
    close(fd);
    reply[got] = '\0';
    if (got == 0) {
        fprintf(stderr, "outpostd ask: the server closed the connection without an answer\n");
        return 1;
    }
    fputs(reply, stdout);
    return 0;
}
