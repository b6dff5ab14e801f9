/* Address literals for the DNS service (dns.h): their canonical text, their
 * reverse names, and the server addresses dns { servers } takes. */
#include "lookup/dns.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int op_dns_canonical_ip(const char *ip, char *out, size_t cap)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, ip, buf) == 1)
        return inet_ntop(AF_INET, buf, out, (socklen_t)cap) ? 0 : -1;
    if (inet_pton(AF_INET6, ip, buf) == 1)
        return inet_ntop(AF_INET6, buf, out, (socklen_t)cap) ? 0 : -1;
    return -1;
}

int op_dns_reverse_name(const char *ip, char *out, size_t cap)
{
    unsigned char b[16];
    if (inet_pton(AF_INET, ip, b) == 1) {
        int n = snprintf(out, cap, "%u.%u.%u.%u.in-addr.arpa", b[3], b[2], b[1], b[0]);
        return n > 0 && (size_t)n < cap ? 0 : -1;
    }
    if (inet_pton(AF_INET6, ip, b) != 1 || cap < 16 * 4 + sizeof "ip6.arpa")
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *p = out;
    for (int i = 15; i >= 0; i--) {
        *p++ = hex[b[i] & 0xf];
        *p++ = '.';
        *p++ = hex[b[i] >> 4];
        *p++ = '.';
    }
    strcpy(p, "ip6.arpa");
    return 0;
}

int op_dns_server_check(const char *s)
{
    unsigned char buf[16];
    char host[64];
    const char *port = NULL;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL || (size_t)(close - s - 1) >= sizeof host)
            return -1;
        memcpy(host, s + 1, (size_t)(close - s - 1));
        host[close - s - 1] = '\0';
        if (inet_pton(AF_INET6, host, buf) != 1)
            return -1;
        if (close[1] == '\0')
            return 0;
        if (close[1] != ':')
            return -1;
        port = close + 2;
    } else {
        if (inet_pton(AF_INET6, s, buf) == 1)
            return 0;
        const char *colon = strchr(s, ':');
        size_t hl = colon ? (size_t)(colon - s) : strlen(s);
        if (hl >= sizeof host)
            return -1;
        memcpy(host, s, hl);
        host[hl] = '\0';
        if (inet_pton(AF_INET, host, buf) != 1)
            return -1;
        if (colon == NULL)
            return 0;
        port = colon + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    return (*port != '\0' && *end == '\0' && p >= 1 && p <= 65535) ? 0 : -1;
}
