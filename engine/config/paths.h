/* The paths compiled in as defaults (make install: PREFIX, SYSCONFDIR,
 * STATEDIR; the Makefile passes them), so an installed outpostd needs no
 * -c.  Without them, Debian's. */
#ifndef OP_PATHS_H
#define OP_PATHS_H

#ifndef OP_SYSCONF_DIR
#define OP_SYSCONF_DIR "/etc/outpost"       /* outpost.conf, lists/, lua/ (the site's) */
#endif
#ifndef OP_DATA_DIR
#define OP_DATA_DIR "/usr/share/outpost"    /* lua/ as shipped */
#endif
#ifndef OP_STATE_DIR
#define OP_STATE_DIR "/var/lib/outpost"     /* counters, control socket by default */
#endif

#define OP_CONFIG_DEFAULT OP_SYSCONF_DIR "/outpost.conf"
#define OP_LUA_DIR_DEFAULT OP_DATA_DIR "/lua"

#endif
