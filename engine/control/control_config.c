/* control { }: the schema rows of the control socket's settings. */
#include "control/control_config.h"

#include "config/config_schema.h"

#define CTL(f) offsetof(op_control_conf_t, f)

static const key_def_t rows[] = {
    {.key = "socket", .type = T_PATH, .doc_def = "`<state_dir>/control.sock`",
     .off = CTL(socket), .descr = "Unix socket of `outpostctl`."},
    {.key = "mode", .type = T_MODE, .def = "0660", .off = CTL(mode),
     .descr = "Permission bits of the control socket (octal)."},
    {.key = "group", .type = T_STRING, .doc_def = "none", .flags = F_NONEMPTY,
     .off = CTL(group),
     .descr = "Admin group: its members may use `outpostctl` besides root and the daemon's "
              "user. The socket gets this group, and each client's credentials are checked."},
};

const op_conf_section_t op_control_section = {
    .name = "control",
    .descr = "The control socket `outpostctl` talks to. Optional, at most once.",
    .keys = OP_CONF_ROWS(rows), .size = sizeof(op_control_conf_t),
};

const op_control_conf_t *op_control_config(const op_config_t *cfg)
{
    return op_config_section(cfg, &op_control_section);
}
