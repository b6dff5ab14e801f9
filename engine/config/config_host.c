/* What a start needs of the machine, checked by `outpostd --check`
 * (op_config_preflight): the daemon's user and group exist, the files it
 * reads after it becomes that user are readable by it, and the
 * directories it creates or writes can be.  A start fails on each of
 * these; --check says so first, at the key's own line.  Not run on a
 * reload, which cannot change users, sockets or the state directory, and
 * must not wait on NSS or the disk more than it does already.
 *
 * Each section's rules are its .preflight (config_schema.h), beside the
 * module that owns the keys; this file has the daemon { } section's and
 * the helpers they share. */
#include "config/config_schema.h"

#include "core/mem.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define fail op__config_fail

const op_conf_node_t *op__config_key_node(const op_config_t *cfg, const char *section,
                                          size_t item, const char *key)
{
    const op_conf_node_t *root = cfg->root, *block = NULL;
    for (size_t i = 0; i < root->nchildren && block == NULL; i++) {
        const op_conf_node_t *n = &root->children[i];
        if (n->kind == OP_CONF_BLOCK && strcmp(n->key, section) == 0 && item-- == 0)
            block = n;
    }
    const op_conf_node_t *at = key ? op__config_find_child(block, key) : NULL;
    return at ? at : block ? block : root;
}

int op__config_identity(const op_config_t *cfg, op_conf_identity_t *id)
{
    *id = (op_conf_identity_t){.uid = getuid(), .gid = getgid()};
    if (cfg->user != NULL) {
        struct passwd *pw = getpwnam(cfg->user);
        if (pw == NULL)
            return -1;
        id->uid = pw->pw_uid;
        id->gid = pw->pw_gid;
        id->set = 1;
    }
    if (cfg->group != NULL) {
        struct group *gr = getgrnam(cfg->group);
        if (gr == NULL)
            return -1;
        id->gid = gr->gr_gid;
        id->set = 1;
    }
    /* Started by anyone else, the daemon cannot change users and stays. */
    id->changes = id->set && geteuid() == 0;
    return 0;
}

int op__config_access_as(const op_config_t *cfg, const char *path, int mode)
{
    op_conf_identity_t id;
    if (op__config_identity(cfg, &id) < 0 || !id.changes)
        return access(path, mode) == 0 ? 0 : errno;
    /* The kernel's answer for the daemon's user: a child becomes it and
     * asks, so groups, ACLs and the path's every directory count. */
    pid_t pid = fork();
    if (pid < 0)
        return errno;
    if (pid == 0) {
        if ((cfg->user ? initgroups(cfg->user, id.gid) : setgroups(0, NULL)) != 0 ||
            setgid(id.gid) != 0 || setuid(id.uid) != 0)
            _exit(EPERM);
        _exit(access(path, mode) == 0 ? 0 : errno);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return errno;
    return WIFEXITED(st) ? WEXITSTATUS(st) : EPERM;
}

/* The directory nearest to path (path included) that exists. */
static char *existing_ancestor(const char *path)
{
    char *dir = op_strdup(path);
    struct stat st;
    while (stat(dir, &st) != 0) {
        char *slash = strrchr(dir, '/');
        if (slash == NULL || slash == dir) {
            strcpy(dir, "/");
            break;
        }
        *slash = '\0';
    }
    return dir;
}

int op__config_creatable_dir(ctx_t *c, const op_conf_node_t *at, const char *where, const char *what,
                             const char *dir)
{
    struct stat st;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return fail(c, at, where, "%s %s exists and is not a directory", what, dir);
        return 0;
    }
    /* The start creates it (mkdir -p) as the user it was started by. */
    char *anc = existing_ancestor(dir);
    int rc = 0;
    if (stat(anc, &st) != 0 || !S_ISDIR(st.st_mode))
        rc = fail(c, at, where, "%s %s cannot be created: %s is not a directory", what, dir, anc);
    else if (access(anc, W_OK | X_OK) != 0)
        rc = fail(c, at, where, "%s %s does not exist and cannot be created: %s is not writable (%s)",
                  what, dir, anc, strerror(errno));
    free(anc);
    return rc;
}

/* daemon { user, group, state_dir } as the start uses them (core/daemon.c):
 * it resolves the user and group, creates the state directory, gives it to
 * the user when it was started as root, and then, as the user, opens the
 * counter store and the control socket there. */
int op__daemon_preflight(ctx_t *c)
{
    const op_config_t *cfg = c->cfg;
    if (cfg->user != NULL && getpwnam(cfg->user) == NULL)
        return fail(c, op__config_key_node(cfg, "daemon", 0, "user"), "daemon",
                    "user '%s' does not exist", cfg->user);
    if (cfg->group != NULL && getgrnam(cfg->group) == NULL)
        return fail(c, op__config_key_node(cfg, "daemon", 0, "group"), "daemon",
                    "group '%s' does not exist", cfg->group);

    const op_conf_node_t *at = op__config_key_node(cfg, "daemon", 0, "state_dir");
    const char *dir = cfg->state_dir;
    struct stat st;
    if (op__config_creatable_dir(c, at, "daemon", "state_dir", dir) < 0)
        return -1;
    op_conf_identity_t id;
    op__config_identity(cfg, &id);
    const char *who = cfg->user ? cfg->user : "the user outpostd runs as";
    if (stat(dir, &st) != 0)
        return 0; /* created, and given to the user, at the start */
    if (id.changes) {
        /* The start makes the user its owner: the owner's bits decide,
         * and the directories above must let the user through. */
        char *parent = op_strdup(dir), *slash = strrchr(parent, '/');
        if (slash != NULL && slash != parent)
            *slash = '\0';
        int err = op__config_access_as(cfg, parent, X_OK);
        int rc = 0;
        if (err != 0)
            rc = fail(c, at, "daemon", "state_dir %s is not reachable by user %s: %s: %s", dir, who,
                      parent, strerror(err));
        else if ((st.st_mode & 0300) != 0300)
            rc = fail(c, at, "daemon", "state_dir %s is not writable by user %s (mode %04o; the "
                      "start makes %s its owner)", dir, who, (unsigned)(st.st_mode & 07777), who);
        free(parent);
        return rc;
    }
    if (access(dir, W_OK | X_OK) != 0)
        return fail(c, at, "daemon", "state_dir %s is not writable by %s: %s", dir, who, strerror(errno));
    return 0;
}

int op_config_preflight(const op_config_t *cfg, char *err, size_t errlen)
{
    ctx_t c = {.cfg = (op_config_t *)cfg, .err = err, .errlen = errlen};
    for (size_t s = 0; s < op__config_nsections; s++)
        if (op__config_sections[s]->preflight != NULL && op__config_sections[s]->preflight(&c) < 0)
            return -1;
    return 0;
}
