/* clamd { } and rspamd { }: the sections of outpost.conf that configure the
 * content scanners (scan.h, AO6).  A section that is absent, or has no
 * address, leaves its scanner off: outpost.scan answers nil, "off". */
#ifndef OP_SCAN_CONFIG_H
#define OP_SCAN_CONFIG_H

#include "config/config.h"
#include "lookup/scan.h"

extern const struct op_conf_section op_clamd_section;
extern const struct op_conf_section op_rspamd_section;

/* The settings of cfg, defaults applied; they live as long as cfg.
 * address is NULL when the scanner is not configured. */
const op_scanner_conf_t *op_clamd_config(const op_config_t *cfg);
const op_scanner_conf_t *op_rspamd_config(const op_config_t *cfg);

#endif
