/* The LDAP service's settings: copied out of a configuration (which belongs
 * to a generation and goes with it), with the bind password read from its
 * file. */
#include "lookup/ldap_conn.h"

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

static int conf_load(op__ldap_conf_t *c, const op_config_t *cfg, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    if (cfg->ldap_bind_password_file != NULL) {
        c->password = read_password(cfg->ldap_bind_password_file, err, errlen);
        if (c->password == NULL)
            return -1;
    }
    c->uris = op_calloc(cfg->nldap_uris, sizeof *c->uris);
    for (size_t i = 0; i < cfg->nldap_uris; i++)
        c->uris[i] = op_strdup(cfg->ldap_uris[i]);
    c->nuris = cfg->nldap_uris;
    c->bind_dn = dup_or_null(cfg->ldap_bind_dn);
    c->starttls = cfg->ldap_starttls;
    c->ca_file = dup_or_null(cfg->ldap_ca_file);
    c->connect_timeout = cfg->ldap_connect_timeout;
    c->timeout = cfg->ldap_timeout;
    c->reconnect_min = cfg->ldap_reconnect_min;
    c->reconnect_max = cfg->ldap_reconnect_max;
    c->size_limit = cfg->ldap_size_limit;
    c->cache_ttl = cfg->ldap_cache_ttl;
    c->negative_ttl = cfg->ldap_negative_ttl;
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

static void dir_free(op_ldap_directory_t *d)
{
    free(d->base);
    free(d->user_filter);
    free(d->address_filter);
    free(d->domain_filter);
    free(d->protected_filter);
    free(d->function_filter);
    for (size_t i = 0; i < d->nsender_attrs; i++)
        free(d->sender_attrs[i]);
    free(d->sender_attrs);
    free(d->limit_attr);
    free(d->lock_attr);
    free(d->networks_attr);
    free(d->tenants_attr);
}

static void dir_load(op_ldap_directory_t *d, const op_config_t *cfg, unsigned version)
{
    dir_free(d);
    memset(d, 0, sizeof *d);
    d->version = version;
    d->base = dup_or_null(cfg->dir_base);
    d->user_filter = dup_or_null(cfg->dir_user_filter);
    d->address_filter = dup_or_null(cfg->dir_address_filter);
    d->domain_filter = dup_or_null(cfg->dir_domain_filter);
    d->protected_filter = dup_or_null(cfg->dir_protected_filter);
    d->function_filter = dup_or_null(cfg->dir_function_filter);
    if (cfg->ndir_sender_attrs > 0) {
        d->nsender_attrs = cfg->ndir_sender_attrs;
        d->sender_attrs = op_calloc(d->nsender_attrs, sizeof *d->sender_attrs);
        for (size_t i = 0; i < d->nsender_attrs; i++)
            d->sender_attrs[i] = op_strdup(cfg->dir_sender_attrs[i]);
    } else {
        d->nsender_attrs = 2;
        d->sender_attrs = op_calloc(2, sizeof *d->sender_attrs);
        d->sender_attrs[0] = op_strdup("mail");
        d->sender_attrs[1] = op_strdup("mailLocalAddress");
    }
    d->limit_attr = dup_or_null(cfg->dir_limit_attr);
    d->lock_attr = dup_or_null(cfg->dir_lock_attr);
    d->networks_attr = dup_or_null(cfg->dir_networks_attr);
    d->tenants_attr = dup_or_null(cfg->dir_tenants_attr);
    d->default_limit = cfg->dir_default_limit;
}

int op__ldap_settings_load(op_ldap_t *l, const op_config_t *cfg, char *err, size_t errlen)
{
    if (conf_load(&l->conf, cfg, err, errlen) < 0)
        return -1;
    dir_load(&l->dir, cfg, 1);
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
    dir_load(&l->dir, cfg, l->dir.version + 1);
    return 0;
}

void op__ldap_settings_free(op_ldap_t *l)
{
    conf_free(&l->conf);
    dir_free(&l->dir);
}
