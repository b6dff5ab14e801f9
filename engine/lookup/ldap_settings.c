/* The LDAP service's settings: copied out of a configuration's ldap { }
 * (which belongs to a generation and goes with it), with the bind password
 * read from its file. */
#include "lookup/ldap_conn.h"

#include "lookup/ldap_config.h"

#include "core/log.h"
#include "core/mem.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static char *dup_or_null(const char *s)
{
    return s != NULL ? op_strdup(s) : NULL;
}

static int streq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static char *read_password(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "ldap: bind_password_file %s: %s", path, strerror(errno));
        return NULL;
    }
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int bad = ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        snprintf(err, errlen, "ldap: bind_password_file %s: unreadable or longer than %zu bytes", path,
                 sizeof buf - 2);
        return NULL;
    }
    buf[n] = '\0';
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if (strlen(buf) != n) {
        snprintf(err, errlen, "ldap: bind_password_file %s: contains a NUL byte", path);
        return NULL;
    }
    char *pw = op_strdup(buf);
    memset(buf, 0, sizeof buf);
    return pw;
}

static void conf_free(op__ldap_conf_t *c)
{
    for (size_t i = 0; i < c->nuris; i++)
        free(c->uris[i]);
    free(c->uris);
    free(c->bind_dn);
    if (c->password != NULL) {
        memset(c->password, 0, strlen(c->password));
        free(c->password);
    }
    free(c->ca_file);
    memset(c, 0, sizeof *c);
}

static int conf_load(op__ldap_conf_t *c, const op_config_t *config, char *err, size_t errlen)
{
    const op_ldap_config_t *cfg = op_ldap_config(config);
    memset(c, 0, sizeof *c);
    if (cfg->bind_password_file != NULL) {
        c->password = read_password(cfg->bind_password_file, err, errlen);
        if (c->password == NULL)
            return -1;
    }
    c->uris = op_calloc(cfg->nuris, sizeof *c->uris);
    for (size_t i = 0; i < cfg->nuris; i++)
        c->uris[i] = op_strdup(cfg->uris[i]);
    c->nuris = cfg->nuris;
    c->bind_dn = dup_or_null(cfg->bind_dn);
    c->starttls = cfg->starttls;
    c->ca_file = dup_or_null(cfg->ca_file);
    c->connect_timeout = cfg->connect_timeout;
    c->timeout = cfg->timeout;
    c->reconnect_min = cfg->reconnect_min;
    c->reconnect_max = cfg->reconnect_max;
    c->size_limit = cfg->size_limit;
    c->cache_ttl = cfg->cache_ttl;
    c->negative_ttl = cfg->negative_ttl;
    return 0;
}

static int servers_differ(const op__ldap_conf_t *a, const op__ldap_conf_t *b)
{
    if (a->nuris != b->nuris || a->starttls != b->starttls || !streq(a->bind_dn, b->bind_dn) ||
        !streq(a->password, b->password) || !streq(a->ca_file, b->ca_file))
        return 1;
    for (size_t i = 0; i < a->nuris; i++)
        if (strcmp(a->uris[i], b->uris[i]) != 0)
            return 1;
    return 0;
}

int op__ldap_settings_load(op_ldap_t *l, const op_config_t *cfg, char *err, size_t errlen)
{
    if (conf_load(&l->conf, cfg, err, errlen) < 0)
        return -1;
    return 0;
}

int op__ldap_settings_reload(op_ldap_t *l, const op_config_t *cfg, int *servers_changed, char *err,
                             size_t errlen)
{
    op__ldap_conf_t next;
    if (conf_load(&next, cfg, err, errlen) < 0) {
        conf_free(&next);
        return -1;
    }
    *servers_changed = servers_differ(&l->conf, &next);
    if (next.size_limit != l->conf.size_limit)
        *servers_changed = 1; /* cached answers were cut at the old limit */
    conf_free(&l->conf);
    l->conf = next;
    return 0;
}

void op__ldap_settings_free(op_ldap_t *l)
{
    conf_free(&l->conf);
}
