/* The Lua side of milter sessions: the table a milter handler gets, and
 * the header modifications an answer carries.
 *
 *   on_eom(ctx): ctx.phase ("connect" ... "eom", "abort"), ctx.service,
 *   ctx.tenant, ctx.macros["{auth_authen}"], ctx.client.address/.name/
 *   .port/.family, ctx.helo, ctx.sender (without <>), ctx.sender_args,
 *   ctx.rcpts (list), ctx.rcpt and ctx.rcpt_args (RCPT), ctx.header
 *   {name=, value=} (HEADER), ctx.headers (list of {name=, value=}, from
 *   the first header on), ctx.truncated (why ctx.headers is not the whole
 *   header, or nil), ctx.chunk (BODY), ctx.body (EOM, the first
 *   keep_body bytes), ctx.conn (a table kept for the connection),
 *   ctx.msg (a table kept for the message, new at every MAIL). */
#include "core/log.h"
#include "proto/milter_session.h"

#include <lauxlib.h>
#include <string.h>

static void set_string(lua_State *L, const char *key, const char *v)
{
    if (v == NULL)
        return;
    lua_pushstring(L, v);
    lua_setfield(L, -2, key);
}

/* "<a@b>" -> "a@b"; "<>" -> "" (the null sender). */
static void push_address(lua_State *L, const char *a)
{
    size_t n = strlen(a);
    if (n >= 2 && a[0] == '<' && a[n - 1] == '>')
        lua_pushlstring(L, a + 1, n - 2);
    else
        lua_pushlstring(L, a, n);
}

static void push_list(lua_State *L, char *const *v, size_t from, size_t n)
{
    lua_createtable(L, (int)(n > from ? n - from : 0), 0);
    for (size_t i = from; i < n; i++) {
        lua_pushstring(L, v[i]);
        lua_rawseti(L, -2, (int)(i - from + 1));
    }
}

static void push_headers(lua_State *L, const op_milter_session_t *s)
{
    lua_createtable(L, (int)s->nheaders, 0);
    for (size_t i = 0; i < s->nheaders; i++) {
        lua_createtable(L, 0, 2);
        set_string(L, "name", s->headers[i].name);
        set_string(L, "value", s->headers[i].value);
        lua_rawseti(L, -2, (int)i + 1);
    }
}

void op_milter_push_ctx(lua_State *co, op_request_t *req, void *session)
{
    const op_milter_session_t *s = session;
    const op_milter_msg_t *m = s->msg;
    lua_createtable(co, 0, 20);
    lua_pushnumber(co, (lua_Number)req->serial);
    lua_setfield(co, -2, "id");
    set_string(co, "phase", op_phase_handler_name(s->phase) + 3);
    set_string(co, "service", s->svc->conf->name);
    set_string(co, "tenant", s->tenant);
    set_string(co, "listener", s->session.l->name);
    lua_rawgeti(co, LUA_REGISTRYINDEX, s->conn_ref);
    lua_setfield(co, -2, "conn");
    lua_rawgeti(co, LUA_REGISTRYINDEX, s->msg_ref);
    lua_setfield(co, -2, "msg");

    lua_createtable(co, 0, (int)s->nmacros);
    for (size_t i = 0; i < s->nmacros; i++)
        set_string(co, s->macros[i].name, s->macros[i].value);
    lua_setfield(co, -2, "macros");

    lua_createtable(co, 0, 4);
    set_string(co, "name", s->hostname);
    set_string(co, "address", s->address);
    if (s->family) {
        char fam[2] = {s->family, '\0'};
        set_string(co, "family", fam);
        lua_pushinteger(co, (lua_Integer)s->port);
        lua_setfield(co, -2, "port");
    }
    lua_setfield(co, -2, "client");
    set_string(co, "helo", s->helo);

    if (s->nmail_args > 0) {
        push_address(co, s->mail_args[0]);
        lua_setfield(co, -2, "sender");
        push_list(co, s->mail_args, 1, s->nmail_args);
        lua_setfield(co, -2, "sender_args");
    }
    lua_createtable(co, (int)s->nrcpts, 0);
    for (size_t i = 0; i < s->nrcpts; i++) {
        push_address(co, s->rcpts[i]);
        lua_rawseti(co, -2, (int)i + 1);
    }
    lua_setfield(co, -2, "rcpts");

    if (s->phase == OP_PHASE_RCPT && m != NULL) {
        push_address(co, m->u.envelope.args[0]);
        lua_setfield(co, -2, "rcpt");
        lua_createtable(co, (int)m->u.envelope.nargs, 0);
        for (size_t i = 1; i < m->u.envelope.nargs; i++) {
            lua_pushstring(co, m->u.envelope.args[i]);
            lua_rawseti(co, -2, (int)i);
        }
        lua_setfield(co, -2, "rcpt_args");
    }
    if (s->phase == OP_PHASE_HEADER && m != NULL) {
        lua_createtable(co, 0, 2);
        set_string(co, "name", m->u.header.name);
        set_string(co, "value", m->u.header.value);
        lua_setfield(co, -2, "header");
    }
    if (s->phase >= OP_PHASE_HEADER) {
        push_headers(co, s);
        lua_setfield(co, -2, "headers");
        set_string(co, "truncated", s->overflow);
    }
    if (s->phase == OP_PHASE_BODY && m != NULL) {
        lua_pushlstring(co, m->u.body.data, m->u.body.len);
        lua_setfield(co, -2, "chunk");
    }
    if (s->phase == OP_PHASE_EOM) {
        lua_pushlstring(co, s->body ? s->body : "", s->body_len);
        lua_setfield(co, -2, "body");
    }
}

size_t op_milter_encode_mods(lua_State *L, int index, op_outbuf_t *ob, uint32_t actions)
{
    size_t n = 0;
    lua_getfield(L, index, "mods");
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        return 0;
    }
    for (int i = 1;; i++) {
        lua_rawgeti(L, -1, i);
        if (!lua_istable(L, -1)) {
            lua_pop(L, 1);
            break;
        }
        lua_getfield(L, -1, "op");
        lua_getfield(L, -2, "name");
        lua_getfield(L, -3, "value");
        lua_getfield(L, -4, "index");
        const char *op = lua_tostring(L, -4), *name = lua_tostring(L, -3);
        const char *value = lua_tostring(L, -2);
        uint32_t idx = (uint32_t)(lua_isnumber(L, -1) ? lua_tonumber(L, -1) : 1);
        char reply = 0;
        uint32_t need = 0;
        if (op && strcmp(op, "add") == 0)
            reply = OP_MILTER_R_ADDHEADER, need = OP_MILTER_F_ADDHDRS;
        else if (op && strcmp(op, "insert") == 0)
            reply = OP_MILTER_R_INSHEADER, need = OP_MILTER_F_ADDHDRS;
        else if (op && strcmp(op, "change") == 0)
            reply = OP_MILTER_R_CHGHEADER, need = OP_MILTER_F_CHGHDRS;
        if (reply && name && (actions & need)) {
            char *p = op_outbuf_reserve(ob, 8192 + 512);
            op_outbuf_commit(ob, op_milter_encode_header(p, 8192 + 512, reply, idx, name,
                                                         value ? value : ""));
            n++;
        } else if (reply && name) {
            op_warn("milter: the MTA did not allow header changes; '%s %s' dropped", op, name);
        }
        lua_pop(L, 5);
    }
    lua_pop(L, 1);
    return n;
}
