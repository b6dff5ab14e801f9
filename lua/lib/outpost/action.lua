-- outpost.action: the answers a policy gives, one constructor per Postfix
-- access(5) action.  The engine accepts only values made here; a policy that
-- returns anything else gets its service's default action.
--
--   local A = require "outpost.action"
--   return A.reject("5.7.1", "account %s is locked", user)
--
-- Texts are formatted with string.format when arguments follow, then
-- sanitised: control characters (CR, LF, NUL, TAB, ...) become spaces, so
-- request data can never end a reply early, and the text is cut at
-- MAX_TEXT bytes, which keeps the whole SMTP reply line under RFC 5321's 512.

-- The globals read on every request, as locals: a global is a lookup
-- through the file's frozen environment and the sandbox's tables.
local select, setmetatable, type = select, setmetatable, type
local core = require "outpost"

local M = {}
local mt = core.action_metatable

M.MAX_TEXT = 400

local function text_of(fmt, ...)
    if fmt == nil then return nil end
    local s = select("#", ...) > 0 and string.format(fmt, ...) or tostring(fmt)
    s = s:gsub("%c", " ")
    if #s > M.MAX_TEXT then s = s:sub(1, M.MAX_TEXT) end
    return s
end

-- Not `return setmetatable(...)`: a tail call of a builtin ends the JIT's
-- trace where it returns into the caller (docs/performance.md, "Traces:
-- after"); so in every function on the per-request path.
local function make(kind, text)
    local action = setmetatable({ kind = kind, text = text }, mt)
    return action
end

local function with_text(word, text)
    if text == nil or text == "" then return word end
    return word .. " " .. text
end

local function check_status(status, class, fn)
    if type(status) ~= "string" or not status:match("^" .. class .. "%.%d%d?%d?%.%d%d?%d?$") then
        error(fn .. ": enhanced status code must look like " .. class .. ".X.Y, got " ..
            tostring(status), 3)
    end
end

-- Accept or go on ------------------------------------------------------------

function M.dunno() return make("dunno", "DUNNO") end
function M.ok() return make("ok", "OK") end

-- Refuse -----------------------------------------------------------------------

-- reject(status, fmt, ...): 5xx; status is an enhanced code such as "5.7.1".
function M.reject(status, fmt, ...)
    check_status(status, "5", "reject")
    return make("reject", "REJECT " .. status .. (fmt and " " .. text_of(fmt, ...) or ""))
end

-- defer(status, fmt, ...): 4xx, the client retries; status such as "4.7.1".
function M.defer(status, fmt, ...)
    check_status(status, "4", "defer")
    return make("defer", "DEFER " .. status .. (fmt and " " .. text_of(fmt, ...) or ""))
end

-- defer_if_permit: defer when later restrictions would accept (Postfix
-- decides at the end of the restriction list).
function M.defer_if_permit(status, fmt, ...)
    check_status(status, "4", "defer_if_permit")
    return make("defer_if_permit",
        "DEFER_IF_PERMIT " .. status .. (fmt and " " .. text_of(fmt, ...) or ""))
end

-- defer_if_reject: defer when later restrictions would reject.
function M.defer_if_reject(status, fmt, ...)
    check_status(status, "4", "defer_if_reject")
    return make("defer_if_reject",
        "DEFER_IF_REJECT " .. status .. (fmt and " " .. text_of(fmt, ...) or ""))
end

-- reply(code, status, fmt, ...): an explicit SMTP code, e.g.
-- reply(451, "4.3.0", "directory unavailable").  Code 4xx or 5xx, and the
-- enhanced status of the same class.
function M.reply(code, status, fmt, ...)
    if type(code) ~= "number" or code < 400 or code > 599 or code % 1 ~= 0 then
        error("reply: SMTP code must be 4xx or 5xx, got " .. tostring(code), 2)
    end
    check_status(status, tostring(math.floor(code / 100)), "reply")
    return make(code < 500 and "defer" or "reject",
        code .. " " .. status .. (fmt and " " .. text_of(fmt, ...) or ""))
end

-- A reply's answer texts ("REJECT 5.7.1 ..."), each made once per distinct
-- argument: the one without arguments when the policy loads, a
-- one-argument one (the usual: the user, the address) at its first use,
-- kept in a table of at most REPLY_CACHE texts per reply, emptied when
-- full.  Other arities are formatted per call.  The action table itself is
-- new per call: the pipeline and the milter add to it (check, detail,
-- header changes).
local REPLY_CACHE = 1000
local function reply_of(kind, prefix, text)
    local fixed = prefix .. text_of(text)
    local by_arg, n = {}, 0
    return function(...)
        local nargs = select("#", ...)
        if nargs == 0 then return make(kind, fixed) end
        if nargs > 1 then return make(kind, prefix .. text_of(text, ...)) end
        local arg = ...
        local t = by_arg[arg]
        if t == nil then
            t = prefix .. text_of(text, arg)
            local ta = type(arg)
            if ta == "string" or ta == "number" and arg == arg then -- NaN is no key
                if n >= REPLY_CACHE then by_arg, n = {}, 0 end
                by_arg[arg] = t
                n = n + 1
            end
        end
        return make(kind, t)
    end
end

-- replies{ key = { [code,] status, text }, ... }: a policy's answers in one
-- table, each a function of the text's arguments:
--   local say = A.replies {
--       no_tls = { 530, "5.7.10", "use TLS on port 465 or STARTTLS on 587" },
--       locked = { "5.7.1", "account %s is locked" },
--   }
--   return say.locked(user)
-- With a code it is reply(code, status, text, ...); without, reject (5.X.Y)
-- or defer (4.X.Y).  Checked when the policy loads.
function M.replies(t)
    local r = {}
    for key, e in pairs(t) do
        if type(e) ~= "table" then error("replies: " .. tostring(key) .. " must be a table", 2) end
        local code, status, text = e[1], e[2], e[3]
        if type(code) ~= "number" then code, status, text = nil, e[1], e[2] end
        if type(status) ~= "string" or not status:match("^[45]%.%d%d?%d?%.%d%d?%d?$")
            or (code and math.floor(code / 100) ~= tonumber(status:sub(1, 1))) then
            error("replies: " .. tostring(key) .. ": bad code or status " .. tostring(status), 2)
        end
        if type(text) ~= "string" then error("replies: " .. tostring(key) .. ": a text is needed", 2) end
        -- the texts M.reply, M.reject and M.defer make
        if code then
            M.reply(code, status) -- a code that is no 4xx or 5xx raises now
            r[key] = reply_of(code < 500 and "defer" or "reject", code .. " " .. status .. " ", text)
        elseif status:sub(1, 1) == "5" then
            r[key] = reply_of("reject", "REJECT " .. status .. " ", text)
        else
            r[key] = reply_of("defer", "DEFER " .. status .. " ", text)
        end
    end
    return setmetatable(r, { __index = function(_, key) error("replies: no reply " .. tostring(key), 2) end })
end

-- Queue and message actions ---------------------------------------------------

function M.hold(fmt, ...) return make("hold", with_text("HOLD", text_of(fmt, ...))) end
function M.discard(fmt, ...) return make("discard", with_text("DISCARD", text_of(fmt, ...))) end
function M.warn(fmt, ...) return make("warn", with_text("WARN", text_of(fmt, ...))) end
function M.info(fmt, ...) return make("info", with_text("INFO", text_of(fmt, ...))) end

-- prepend("X-Outpost: checked"): adds a header line to the message.
function M.prepend(header)
    local h = text_of(header)
    if not h or not h:match("^[!-9;-~]+:") then
        error("prepend: expected 'Name: value', got " .. tostring(header), 2)
    end
    return make("prepend", "PREPEND " .. h)
end

local function address_arg(fn, addr)
    local a = text_of(addr)
    if not a or not a:match("^[^%s@]+@[^%s@]+$") then
        error(fn .. ": expected an address, got " .. tostring(addr), 3)
    end
    return a
end

function M.redirect(address) return make("redirect", "REDIRECT " .. address_arg("redirect", address)) end
function M.bcc(address) return make("bcc", "BCC " .. address_arg("bcc", address)) end

-- filter("smtp:[127.0.0.1]:10025"): send the message through transport:destination.
function M.filter(dest)
    local d = text_of(dest)
    if not d or not d:match("^[%w%-_]+:%S+$") then
        error("filter: expected transport:destination, got " .. tostring(dest), 2)
    end
    return make("filter", "FILTER " .. d)
end

-- Header changes (milter only) ------------------------------------------------
-- An answer at end of message may carry header changes, applied by the MTA
-- before it queues the message:
--   return A.dunno():add_header("X-Outpost-PO8", "log-only: From not authorised")
-- Through the policy protocol they have no effect (Postfix's PREPEND is the
-- one header action there).

local methods = {}
mt.__index = methods

local function header_name(fn, name)
    if type(name) ~= "string" or not name:match("^[!-9;-~]+$") then
        error(fn .. ": header name expected, got " .. tostring(name), 3)
    end
    return name
end

local function add_mod(self, mod)
    local mods = rawget(self, "mods")
    if not mods then
        mods = {}
        rawset(self, "mods", mods)
    end
    mods[#mods + 1] = mod
    return self
end

-- Appends a header.
function methods:add_header(name, value)
    return add_mod(self, { op = "add", name = header_name("add_header", name),
        value = text_of(value) or "" })
end

-- Inserts a header at position index (1 = first).
function methods:insert_header(index, name, value)
    if type(index) ~= "number" or index < 1 then error("insert_header: index must be >= 1", 2) end
    return add_mod(self, { op = "insert", index = math.floor(index),
        name = header_name("insert_header", name), value = text_of(value) or "" })
end

-- Changes the index-th header called name (1 = the first); an empty value
-- deletes it.
function methods:change_header(name, index, value)
    if type(index) ~= "number" or index < 1 then error("change_header: index must be >= 1", 2) end
    return add_mod(self, { op = "change", index = math.floor(index),
        name = header_name("change_header", name), value = text_of(value) or "" })
end

-- What a check in tag mode (outpost.pipeline) writes in its X-Outpost-<ID>
-- header instead of answering: A.reject(...):tag("url-shortener bit.ly").
-- Without it the header holds the action's text.
function methods:tag(text)
    rawset(self, "tag", text_of(text))
    return self
end

-- What the decision line says beside the answer (detail="..."): the
-- findings behind it, e.g. a scanner's verdict (AO6).  Milter answers.
function methods:detail(text)
    rawset(self, "detail", text_of(text))
    return self
end

-- Inspecting ---------------------------------------------------------------------

function M.is_action(v) return type(v) == "table" and getmetatable(v) == mt end

return M
