/* require "outpost.listfile": the raw data lists of lists_dir (lua/lib/outpost/lists.lua
 * builds networks, domain sets and maps on it), read when a policy
 * loads (so a reload re-reads them, and a broken list refuses the reload
 * like a broken policy).
 *
 *   local entries = require("outpost.listfile").read("campus_networks")
 *   -- { {file = ".../campus_networks.txt", line = 3, text = "10.0.0.0/8 area-a",
 *   --    fields = {"10.0.0.0/8", "area-a"}}, ... }
 *
 * A list is lists_dir/NAME.txt: one entry per line, fields separated by
 * white space, '#' starts a comment, blank lines are skipped.  Reading is
 * blocking file I/O, so it is refused inside a request: read lists at the
 * top of a policy or library, not in a handler. */
#include "core/request.h"
#include "core/vm.h"

#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>
#include <string.h>

#define MAX_LIST_LINE 4096

int luaopen_outpost_lists(lua_State *L);

static int valid_name(const char *s)
{
    if (*s == '\0')
        return 0;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

static int l_lists_read(lua_State *L)
{
    const char *name = luaL_checkstring(L, 1);
    if (!valid_name(name))
        return luaL_argerror(L, 1, "a list name is letters, digits, '_' and '-'");
    const op_request_t *req = op_request_current(L);
    if (req != NULL && !req->host) /* specs, in the test host, may read lists */
        return luaL_error(L, "outpost.listfile.read: lists are read when the policy loads, not in "
                             "a request");
    lua_getfield(L, LUA_REGISTRYINDEX, "outpost.lists_dir");
    const char *dir = lua_tostring(L, -1);
    if (dir == NULL)
        return luaL_error(L, "outpost.listfile.read: no lists_dir configured");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.txt", dir, name);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return luaL_error(L, "list %s: %s: %s", name, path, strerror(errno));
    lua_newtable(L);
    char line[MAX_LIST_LINE + 2];
    int lineno = 0, n = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        else if (!feof(f)) {
            fclose(f);
            return luaL_error(L, "%s:%d: line longer than %d bytes", path, lineno, MAX_LIST_LINE);
        }
        if (memchr(line, '\0', len) != NULL || strlen(line) != len) {
            fclose(f);
            return luaL_error(L, "%s:%d: NUL byte in a list", path, lineno);
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        char *end = p + strlen(p);
        while (end > p && isspace((unsigned char)end[-1]))
            *--end = '\0';
        if (*p == '\0')
            continue;
        lua_createtable(L, 0, 4);
        lua_pushstring(L, path);
        lua_setfield(L, -2, "file");
        lua_pushinteger(L, lineno);
        lua_setfield(L, -2, "line");
        lua_pushstring(L, p);
        lua_setfield(L, -2, "text");
        lua_newtable(L);
        int nf = 0;
        for (char *tok = strtok(p, " \t\r"); tok != NULL; tok = strtok(NULL, " \t\r")) {
            lua_pushstring(L, tok);
            lua_rawseti(L, -2, ++nf);
        }
        lua_setfield(L, -2, "fields");
        lua_rawseti(L, -2, ++n);
    }
    fclose(f);
    return 1;
}

int luaopen_outpost_lists(lua_State *L)
{
    lua_createtable(L, 0, 1);
    lua_pushcfunction(L, l_lists_read);
    lua_setfield(L, -2, "read");
    return 1;
}
