/* smtp_verify { }: the section of outpost.conf that configures the SMTP
 * call-out: the service's op_smtp_conf_t (smtp.h) and the destination a
 * policy's verify() uses when it names none (lua_api_smtp.c). */
#ifndef OP_SMTP_CONFIG_H
#define OP_SMTP_CONFIG_H

#include "config/config.h"
#include "lookup/smtp.h"

typedef struct {
    op_smtp_conf_t smtp;
    char *host;  /* NULL: the address's MX */
    size_t port;
} op_smtp_verify_conf_t;

extern const struct op_conf_section op_smtp_verify_section;

/* The smtp_verify { } settings of cfg, defaults applied; they live as long as cfg. */
const op_smtp_verify_conf_t *op_smtp_verify_config(const op_config_t *cfg);

#endif
