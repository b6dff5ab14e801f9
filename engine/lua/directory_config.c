/* directory { }: how lua/lib/site/directory.lua finds users, addresses, local
 * domains and function accounts in the LDAP directory, and where each flag,
 * set and limit the policies ask about lives: an attribute of the entry, the
 * membership of a group, or either (docs/config.md, "Fitting your
 * directory").  No C reads these settings: the section has no struct, and
 * each generation gets its values as the table outpost.config().directory
 * (config_lua.c).  A new setting is a row here and a line in directory.lua;
 * the schema names live here and in the configuration, never in lua/. */
#include "config/config_schema.h"

static const key_def_t rows[] = {
    {.key = "base", .type = T_STRING, .def = "dc=example,dc=org",
     .flags = F_NONEMPTY, .descr = "Base DN of every directory search (subtree)."},
    {.key = "login", .type = T_ENUM, .def = "as_given", .values = "as_given|without_realm|both",
     .descr = "How a SASL login becomes the `%s` of `user_filter` and `function_filter`: "
              "`as_given`; `without_realm` (`alice@example.org` is looked up as `alice`, as "
              "Cyrus SASL appends a realm); `both`: as given, then without the realm. The same "
              "rule for users and function accounts."},
    {.key = "account_attr", .type = T_STRING, .def = "uid", .flags = F_NONEMPTY,
     .descr = "Attribute naming an account canonically, whatever spelling of the login found "
              "it: PO7 counts it (`alice` and `alice@example.org` are one user), and "
              "`member_attr = memberUid` groups list it."},
    {.key = "user_filter", .type = T_STRING,
     .def = "(&(objectClass=inetOrgPerson)(uid=%s))", .flags = F_NONEMPTY,
     .descr = "Finds a user by login name (`%s`): `directory.user(login)`."},
    {.key = "address_filter", .type = T_STRING,
     .def = "(|(mail=%1)(mailLocalAddress=%1))", .flags = F_NONEMPTY,
     .descr = "Finds whatever receives mail at an address (`%1`): `directory.mailbox_exists(address)`."},
    {.key = "domain_filter", .type = T_STRING,
     .def = "(&(objectClass=domainRelatedObject)(associatedDomain=%s))", .flags = F_NONEMPTY,
     .descr = "Finds a local mail domain (`%s`, in normal form): `directory.is_local_domain(domain)`."},
    {.key = "protected_filter", .type = T_STRING,
     .def = "(&(|(mail=%1)(mailLocalAddress=%1))(mailAuthRequired=TRUE))",
     .descr = "Finds a recipient that accepts only authenticated senders (`%1`), MO6: "
              "`directory.requires_authenticated_sender(address)`. Empty: only `protected_group` says so."},
    {.key = "protected_group", .type = T_STRING, .def = "", .doc_def = "none",
     .descr = "DN of a group whose members (the entries `address_filter` finds) accept only "
              "authenticated senders (MO6); either this or `protected_filter` makes a recipient protected."},
    {.key = "function_filter", .type = T_STRING,
     .def = "(&(objectClass=outpostFunctionAccount)(uid=%s))", .flags = F_NONEMPTY,
     .descr = "Finds an application's function account by login name (`%s`): "
              "`directory.function_account(login)`."},
    {.key = "function_group", .type = T_STRING, .def = "", .doc_def = "none",
     .descr = "DN of a group an entry of `function_filter` must be a member of to be a function "
              "account (AO3). Empty: every entry `function_filter` finds is one."},
    {.key = "sender_attrs", .type = T_LIST, .def = "mail, mailLocalAddress",
     .doc_def = "[mail, mailLocalAddress]", .doc_type = "list of attribute names",
     .descr = "Attributes holding the addresses an account may send as."},
    {.key = "lock_attr", .type = T_STRING, .def = "pwdAccountLockedTime",
     .descr = "An account with this attribute is locked (PO3, AO3); operational attributes "
              "work. Empty: only `lock_group` locks."},
    {.key = "lock_group", .type = T_STRING, .def = "", .doc_def = "none",
     .descr = "DN of a group whose members are locked (PO3, AO3); either this or `lock_attr` locks."},
    {.key = "tenants_attr", .type = T_STRING, .def = "mailServiceTenant",
     .descr = "The appout tenants a function account is enabled for (AO3). Empty: only "
              "`tenant_group` enables."},
    {.key = "tenant_group", .type = T_STRING, .def = "", .doc_def = "none",
     .descr = "DN pattern of the group of the function accounts enabled for tenant `%t` (AO3), e.g. "
              "`cn=tenant-%t-apps,ou=groups,dc=example,dc=org`; either this or `tenants_attr` enables."},
    {.key = "member_attrs", .type = T_LIST, .def = "member, uniqueMember, memberUid",
     .doc_def = "[member, uniqueMember, memberUid]", .doc_type = "list of attribute names",
     .descr = "Attributes of the groups above that name their members: by DN (`member`, "
              "`uniqueMember`) or by the value of `account_attr` (`memberUid`); a group may use "
              "any of them. One group entry, cached like every search, answers every member "
              "check until it leaves the cache."},
    {.key = "networks_attr", .type = T_STRING, .def = "mailAllowedNetwork",
     .flags = F_NONEMPTY, .descr = "A function account's allowed client networks (CIDR), AO5."},
    {.key = "user_limit_attr", .type = T_STRING, .def = "mailSendLimit", .flags = F_NONEMPTY,
     .descr = "A user's recipient limit per 24 h (PO7): a count, or a key of `user_limit_tiers`."},
    {.key = "user_limit_tiers", .type = T_LIST, .doc_def = "empty: a count",
     .doc_type = "list of KEY=COUNT",
     .descr = "When given, `user_limit_attr` is a tier, read through this table: "
              "`[1=250, 2=500, 3=1000]`; a value not in it gives `default_limit`."},
    {.key = "function_limit_attr", .type = T_STRING, .def = "mailSendLimit", .flags = F_NONEMPTY,
     .descr = "A function account's agreed send limit (AO8): a count, or a key of "
              "`function_limit_tiers`."},
    {.key = "function_limit_tiers", .type = T_LIST, .doc_def = "empty: a count",
     .doc_type = "list of KEY=COUNT",
     .descr = "When given, `function_limit_attr` is read through this table, like `user_limit_tiers`."},
    {.key = "default_limit", .type = T_INTEGER, .def = "250", .lo = 1, .hi = 10000000,
     .descr = "A user's recipient limit per 24 h when the directory names none (PO7)."},
};

const op_conf_section_t op_directory_section = {
    .name = "directory",
    .descr = "How `lua/lib/site/directory.lua` finds users, addresses, local domains and function "
             "accounts in the LDAP directory: base DN, filter templates (`%s`/`%1` placeholders, "
             "see docs/lua-api.md), attribute names and groups, so any mail schema fits "
             "(docs/config.md, \"Fitting your directory\"). Optional, at most once.",
    .keys = OP_CONF_ROWS(rows), .lua = 1,
};
