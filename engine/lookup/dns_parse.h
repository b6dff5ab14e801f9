/* Reading a DNS answer (internal to dns.c): the records of the asked type at
 * the end of the CNAME chain, the TTLs, and the SOA of a negative answer. */
#ifndef OP_DNS_PARSE_H
#define OP_DNS_PARSE_H

#include "lookup/dns.h"
#include "lib/names.h"

typedef struct {
    int rcode;                      /* header RCODE */
    op_dns_result_t *res;           /* status OK, NXDOMAIN or NODATA; records sorted */
    uint32_t ttl;                   /* smallest TTL of the records and CNAMEs used */
    int has_soa;                    /* a negative answer carried an SOA */
    uint32_t neg_ttl;               /* min(SOA TTL, SOA minimum), RFC 2308 */
    char cname[OP_NAME_MAX + 2];    /* non-empty: the chain ends here without data; ask again */
    int hops;                       /* CNAMEs followed in this answer */
} op__dns_answer_t;

/* Parses abuf for qname/qtype.  Returns 0, or -1 when the message is
 * malformed (formerr).  On 0 with rcode NOERROR/NXDOMAIN, out->res is set
 * (the caller owns the reference). */
int op__dns_parse(const unsigned char *abuf, int alen, const char *qname, int qtype,
                  op__dns_answer_t *out);

op_dns_result_t *op__dns_result_new(op_dns_status_t status, uint32_t ttl);

#endif
