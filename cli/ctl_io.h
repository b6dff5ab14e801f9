/* One exchange with outpostd's control socket: the request line out, the
 * answer in, printed (stdout, or the error on stderr); the exit status. */
#ifndef CTL_IO_H
#define CTL_IO_H

#include <stddef.h>

enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_DENIED = 4,
       EXIT_RESTART = 5 };

/* req: FORMAT TAB WORD ... LF (engine/control/control.h). */
int ctl_request(const char *sock, const char *req, size_t len, int json);

#endif
