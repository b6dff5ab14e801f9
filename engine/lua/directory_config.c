/* directory { }: how lua/lib/site/directory.lua finds users, addresses, local
 * domains and function accounts in the LDAP directory.  No C reads these
 * settings: the section has no struct, and each generation gets its values
 * as the table outpost.config().directory (config_lua.c).  A new setting
 * is a row here and a line in directory.lua. */
#include "config/config_schema.h"

static const key_def_t rows[] = {
    {.key = "base", .type = T_STRING, .def = "dc=example,dc=org",
     .flags = F_NONEMPTY, .descr = "Base DN of every directory search (subtree)."},
    {.key = "user_filter", .type = T_STRING,
     .tmpl = OP_FILTER_TEMPLATE(1),
     .def = "(&(objectClass=inetOrgPerson)(uid=%s))", .flags = F_NONEMPTY,
     .descr = "Finds a user by login name (`%s`): `directory.user(uid)`."},
    {.key = "address_filter", .type = T_STRING,
     .tmpl = OP_FILTER_TEMPLATE(1),
     .def = "(|(mail=%1)(mailLocalAddress=%1))", .flags = F_NONEMPTY,
     .descr = "Finds whatever receives mail at an address (`%1`): `directory.mailbox_exists(address)`."},
    {.key = "domain_filter", .type = T_STRING,
     .tmpl = OP_FILTER_TEMPLATE(1),
     .def = "(&(objectClass=domainRelatedObject)(associatedDomain=%s))", .flags = F_NONEMPTY,
     .descr = "Finds a local mail domain (`%s`, in normal form): `directory.is_local_domain(domain)`."},
    {.key = "protected_filter", .type = T_STRING,
     .tmpl = OP_FILTER_TEMPLATE(1),
     .def = "(&(|(mail=%1)(mailLocalAddress=%1))(mailAuthRequired=TRUE))", .flags = F_NONEMPTY,
     .descr = "Finds a recipient that accepts only authenticated senders (`%1`): "
              "`directory.requires_authenticated_sender(address)`."},
    {.key = "function_filter", .type = T_STRING,
     .tmpl = OP_FILTER_TEMPLATE(1),
     .def = "(&(objectClass=outpostFunctionAccount)(uid=%s))", .flags = F_NONEMPTY,
     .descr = "Finds an application's function account by login name (`%s`): "
              "`directory.function_account(uid)`."},
    {.key = "sender_attrs", .type = T_LIST, .def = "mail, mailLocalAddress",
     .doc_def = "[mail, mailLocalAddress]", .doc_type = "list of attribute names",
     .descr = "Attributes holding the addresses an account may send as."},
    {.key = "limit_attr", .type = T_STRING, .def = "mailSendLimit",
     .flags = F_NONEMPTY,
     .descr = "Integer attribute: a user's recipient limit per 24 h (PO7 tier) or a function "
              "account's agreed send limit (AO8)."},
    {.key = "lock_attr", .type = T_STRING, .def = "pwdAccountLockedTime",
     .flags = F_NONEMPTY,
     .descr = "An account with this attribute is locked (PO3, AO3); operational attributes work."},
    {.key = "networks_attr", .type = T_STRING, .def = "mailAllowedNetwork",
     .flags = F_NONEMPTY, .descr = "A function account's allowed client networks (CIDR), AO5."},
    {.key = "tenants_attr", .type = T_STRING, .def = "mailServiceTenant",
     .flags = F_NONEMPTY, .descr = "The appout tenants a function account is enabled for."},
    {.key = "default_limit", .type = T_INTEGER, .def = "250", .lo = 1, .hi = 10000000,
     .descr = "A user's recipient limit per 24 h when the directory names none (PO7)."},
};

const op_conf_section_t op_directory_section = {
    .name = "directory",
    .descr = "How `lua/lib/site/directory.lua` finds users, addresses, local domains and function "
             "accounts in the LDAP directory: base DN, filter templates (`%s`/`%1` placeholders, "
             "see docs/lua-api.md) and attribute names, so any mail schema fits. Optional, at most once.",
    .keys = OP_CONF_ROWS(rows), .lua = 1,
};
