/* ldap { }: the schema rows of the LDAP service's settings. */
#include "lookup/ldap_config.h"

#include "config/config_schema.h"

#include <ldap.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define LDAP(f) offsetof(op_ldap_config_t, f)

/* A URI libldap cannot use fails every connection attempt, not the start,
 * so it is refused when the file is read, at its own line. */
static int check_uris(ctx_t *c, const op_conf_node_t *at, const char *where, void *obj)
{
    const op_ldap_config_t *l = obj;
    static const char *const schemes[] = {"ldap://", "ldaps://", "ldapi://"};
    for (size_t i = 0; i < l->nuris; i++) {
        const char *u = l->uris[i];
        const op_conf_node_t *el = i < at->nchildren ? &at->children[i] : at;
        int known = 0;
        for (size_t j = 0; j < sizeof schemes / sizeof schemes[0]; j++)
            known |= strncasecmp(u, schemes[j], strlen(schemes[j])) == 0;
        if (!known)
            return op__config_fail(c, el, where, "uris: '%s': unsupported scheme '%.*s' (ldap://, "
                                   "ldaps:// or ldapi://)", u, (int)strcspn(u, ":/"), u);
        LDAPURLDesc *d = NULL;
        int rc = ldap_url_parse(u, &d);
        ldap_free_urldesc(d);
        if (rc != LDAP_URL_SUCCESS)
            return op__config_fail(c, el, where, "uris: '%s' is not an LDAP URI (e.g. ldap://HOST:PORT/)", u);
    }
    return 0;
}

static const key_def_t rows[] = {
    {.key = "uris", .type = T_LIST, .doc_def = "empty",
     .doc_type = "list of URIs", .off = LDAP(uris), .count_off = LDAP(nuris), .check = check_uris,
     .descr = "Servers, tried in order: `ldap://HOST:PORT/` or `ldaps://HOST:PORT/`. A connection "
              "uses the first that answers; when it breaks, the next attempt starts again at the first."},
    {.key = "bind_dn", .type = T_STRING, .doc_def = "none (anonymous)",
     .flags = F_NONEMPTY, .off = LDAP(bind_dn),
     .descr = "DN for a simple bind; without it connections bind anonymously."},
    {.key = "bind_password_file", .type = T_PATH, .doc_def = "none",
     .off = LDAP(bind_password_file),
     .descr = "File holding the bind password (one line; a trailing newline is ignored), "
              "read at start and at every reload. Keep it readable by outpostd only."},
    {.key = "starttls", .type = T_BOOL, .def = "no", .off = LDAP(starttls),
     .descr = "Send StartTLS on `ldap://` connections before binding; a failure fails the connection."},
    {.key = "ca_file", .type = T_PATH, .doc_def = "the system's CAs",
     .off = LDAP(ca_file),
     .descr = "CA certificates (PEM) that verify the server for `ldaps://` and StartTLS."},
    {.key = "pool_size", .type = T_INTEGER, .def = "2", .lo = 1, .hi = 64,
     .off = LDAP(pool_size),
     .descr = "Connections kept open; searches go to the least busy. Applied at restart."},
    {.key = "timeout", .type = T_DURATION, .def = "5s", .flags = F_ABOVE_LO,
     .lo = 0, .hi = 90, .off = LDAP(timeout),
     .descr = "Default time a search may take (`timeout=` of a search overrides it); then it "
              "answers `nil, \"timeout\"`."},
    {.key = "connect_timeout", .type = T_DURATION, .def = "3s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 60, .off = LDAP(connect_timeout),
     .descr = "Time to connect, StartTLS and bind to one server before trying the next."},
    {.key = "reconnect_min", .type = T_DURATION, .def = "100ms",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 3600, .off = LDAP(reconnect_min),
     .descr = "Wait before reconnecting after a connection failed; doubles with every failure "
              "in a row up to `reconnect_max`."},
    {.key = "reconnect_max", .type = T_DURATION, .def = "10s",
     .flags = F_ABOVE_LO, .lo = 0, .hi = 3600, .off = LDAP(reconnect_max),
     .descr = "Longest wait between reconnection attempts."},
    {.key = "size_limit", .type = T_INTEGER, .def = "100", .lo = 1,
     .hi = 100000, .off = LDAP(size_limit),
     .descr = "Most entries one search returns; more answer `nil, \"sizelimit\"`."},
    {.key = "cache_size", .type = T_INTEGER, .def = "10000", .lo = 0,
     .hi = 10000000, .off = LDAP(cache_size),
     .descr = "Most answers kept in the cache (least recently used go first); 0 turns the cache off. "
              "The cache lives in the service and survives reloads."},
    {.key = "cache_ttl", .type = T_DURATION, .def = "60s", .lo = 0,
     .hi = 86400, .off = LDAP(cache_ttl),
     .descr = "How long an answer with entries is reused."},
    {.key = "negative_ttl", .type = T_DURATION, .def = "30s", .lo = 0,
     .hi = 86400, .off = LDAP(negative_ttl),
     .descr = "How long an answer without entries (or `nosuchobject`) is reused. Errors are never cached."},
};

/* The LDAP service starts after the daemon became its user: the password
 * file is read then (a start fails on it), the CA file when each
 * connection is made (every connection would fail).  Only with uris:
 * without them there is no LDAP service. */
static int ldap_preflight(ctx_t *c)
{
    const op_ldap_config_t *l = op_ldap_config(c->cfg);
    const char *keys[] = {"bind_password_file", "ca_file"};
    const char *paths[] = {l->bind_password_file, l->ca_file};
    for (size_t i = 0; i < 2 && l->nuris > 0; i++) {
        int err = paths[i] ? op__config_access_as(c->cfg, paths[i], R_OK) : 0;
        if (err != 0)
            return op__config_fail(c, op__config_key_node(c->cfg, "ldap", 0, keys[i]), "ldap",
                                   "%s %s is not readable by %s: %s", keys[i], paths[i],
                                   c->cfg->user ? c->cfg->user : "the user outpostd runs as",
                                   strerror(err));
    }
    return 0;
}

const op_conf_section_t op_ldap_section = {
    .name = "ldap",
    .descr = "The LDAP directory `outpost.ldap` searches (engine/lookup/ldap_service.c): servers, binding, "
             "connection pool, timeouts and the answer cache. Optional, at most once; without "
             "`uris` there is no LDAP service and `outpost.ldap.search` raises.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_ldap_config_t), .preflight = ldap_preflight,
};

const op_ldap_config_t *op_ldap_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_ldap_section);
}
