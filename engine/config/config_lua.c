/* The sections marked for Lua (op_conf_section_t.lua), handed to a
 * generation as plain tables: outpost.config()[section] = {key = value}.
 * Generic over the schema, so a new key of such a section reaches the
 * policies and libraries without any C of its own. */
#include "config/config_schema.h"

#include <lua.h>
#include <string.h>

static void push_value(lua_State *L, const op_conf_section_t *sec, const key_def_t *k, void *obj)
{
    void *field = op__config_field(sec, k, obj);
    switch (k->type) {
    case T_STRING:
    case T_PATH:
        if (*(char **)field != NULL)
            lua_pushstring(L, *(char **)field);
        else
            lua_pushnil(L);
        break;
    case T_BOOL:
        lua_pushboolean(L, *(int *)field);
        break;
    case T_INTEGER:
        if (k->flags & F_INT)
            lua_pushnumber(L, (lua_Number)*(int *)field);
        else
            lua_pushnumber(L, (lua_Number)*(size_t *)field);
        break;
    case T_DURATION:
        lua_pushnumber(L, *(double *)field);
        break;
    case T_MODE:
        lua_pushnumber(L, *(int *)field);
        break;
    case T_ENUM: {
        /* The name as written, unless the row stores a code of its own. */
        int i = *(int *)field;
        const char *p = k->values;
        for (; k->code == NULL && i > 0 && *p != '\0'; i--)
            p += strcspn(p, "|") + (p[strcspn(p, "|")] == '|');
        if (k->code == NULL)
            lua_pushlstring(L, p, strcspn(p, "|"));
        else
            lua_pushnumber(L, *(int *)field);
        break;
    }
    case T_LIST: {
        char **items = *(char ***)field;
        size_t n = *op__config_count(sec, k, obj);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lua_pushstring(L, items[i]);
            lua_rawseti(L, -2, (int)i + 1);
        }
        break;
    }
    }
}

void op_config_push_lua(lua_State *L, const op_config_t *cfg)
{
    for (size_t s = 0; s < op__config_nsections; s++) {
        const op_conf_section_t *sec = op__config_sections[s];
        if (!sec->lua || sec->named)
            continue;
        void *obj = sec->in_config ? (void *)cfg : cfg->sections[s];
        lua_createtable(L, 0, (int)sec->nkeys);
        for (size_t i = 0; i < sec->nkeys; i++) {
            push_value(L, sec, &sec->keys[i], obj);
            lua_setfield(L, -2, sec->keys[i].key);
        }
        lua_setfield(L, -2, sec->name);
    }
}
