/* outpostctl -c FILE: the control socket a configuration file names. */
#ifndef CTL_CONF_H
#define CTL_CONF_H

#include <stddef.h>

/* The path of the control socket of FILE into out: control { socket }, else
 * <daemon { state_dir }>/control.sock, else <default_state_dir>/control.sock;
 * relative paths are taken from FILE's directory, as the daemon does.
 * 0, or -1 with err when FILE cannot be read. */
int ctl_conf_socket(const char *file, const char *default_state_dir, char *out, size_t outlen,
                    char *err, size_t errlen);

#endif
