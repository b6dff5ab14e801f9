#include "lib/netset.h"

#include "core/mem.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct node {
    struct node *child[2];
    char *label;  /* set when a prefix ends here */
    int terminal; /* a prefix ends here (label may be NULL) */
} node_t;

struct op_netset {
    node_t *root4, *root6;
    size_t count;
};

op_netset_t *op_netset_new(void)
{
    return op_calloc(1, sizeof(op_netset_t));
}

static void free_node(node_t *n)
{
    /* iterative over the left spine would be nicer; depth is at most 129 */
    if (n == NULL)
        return;
    free_node(n->child[0]);
    free_node(n->child[1]);
    free(n->label);
    free(n);
}

void op_netset_free(op_netset_t *s)
{
    if (s == NULL)
        return;
    free_node(s->root4);
    free_node(s->root6);
    free(s);
}

size_t op_netset_count(const op_netset_t *s)
{
    return s->count;
}

static int bit(const unsigned char *a, int i)
{
    return (a[i / 8] >> (7 - i % 8)) & 1;
}

/* Parses an address; returns its bit length (32 or 128) or 0. */
static int parse_addr(const char *text, unsigned char out[16])
{
    if (strchr(text, ':') != NULL) {
        if (inet_pton(AF_INET6, text, out) != 1)
            return 0;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(out, mapped, 12) == 0) { /* ::ffff:192.0.2.1 is an IPv4 client */
            memmove(out, out + 12, 4);
            return 32;
        }
        return 128;
    }
    return inet_pton(AF_INET, text, out) == 1 ? 32 : 0;
}

int op_netset_add(op_netset_t *s, const char *cidr, const char *label, char *err, size_t errlen)
{
    char buf[64];
    if (strlen(cidr) >= sizeof buf) {
        snprintf(err, errlen, "'%.40s...' is not a network", cidr);
        return -1;
    }
    strcpy(buf, cidr);
    char *slash = strchr(buf, '/');
    if (slash != NULL)
        *slash = '\0';
    unsigned char a[16] = {0};
    int bits = strchr(buf, ':') ? (inet_pton(AF_INET6, buf, a) == 1 ? 128 : 0)
                                : (inet_pton(AF_INET, buf, a) == 1 ? 32 : 0);
    if (bits == 0) {
        snprintf(err, errlen, "'%s' is not an IPv4 or IPv6 network", cidr);
        return -1;
    }
    int len = bits;
    if (slash != NULL) {
        char *end;
        long l = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end != '\0' || l < 0 || l > bits) {
            snprintf(err, errlen, "'%s': the prefix length must be 0..%d", cidr, bits);
            return -1;
        }
        len = (int)l;
    }
    for (int i = len; i < bits; i++) {
        if (bit(a, i)) {
            snprintf(err, errlen, "'%s' has host bits set (did you mean a /%d of another "
                     "network?)", cidr, len);
            return -1;
        }
    }
    node_t **root = bits == 32 ? &s->root4 : &s->root6;
    if (*root == NULL)
        *root = op_calloc(1, sizeof(node_t));
    node_t *n = *root;
    for (int i = 0; i < len; i++) {
        int b = bit(a, i);
        if (n->child[b] == NULL)
            n->child[b] = op_calloc(1, sizeof(node_t));
        n = n->child[b];
    }
    if (!n->terminal)
        s->count++;
    n->terminal = 1;
    free(n->label);
    n->label = label != NULL ? op_strdup(label) : NULL;
    return 0;
}

const char *op_netset_match(const op_netset_t *s, const char *addr, int *prefix)
{
    unsigned char a[16];
    int bits = parse_addr(addr, a);
    if (bits == 0)
        return NULL;
    const node_t *n = bits == 32 ? s->root4 : s->root6;
    const node_t *best = NULL;
    int best_len = -1;
    for (int i = 0; n != NULL; i++) {
        if (n->terminal) {
            best = n;
            best_len = i;
        }
        if (i == bits)
            break;
        n = n->child[bit(a, i)];
    }
    if (best == NULL)
        return NULL;
    if (prefix != NULL)
        *prefix = best_len;
    return best->label != NULL ? best->label : "";
}
