-- Mail addresses in one normal form, so that counters, policies and the
-- directory all name a sender the same way (docs/lua-api.md).
--
--   address.parse(s)              -> {local_part, domain, tag} | {null = true} | nil, "badaddress"
--   address.normalize(s [, opts]) -> "local@domain" | "" (null sender) | nil, "badaddress"
--   address.subject(req [, opts]) -> what a per-sender limit counts
--
-- The normal form: surrounding <> and spaces removed; the domain through
-- outpost.domain (lower case, no trailing dot, IDN as A-labels); the local
-- part in lower case, as the directory compares mail addresses
-- (caseIgnoreIA5Match), unless opts.keep_case; a +tag removed unless
-- opts.strip_tag == false (opts.separators lists the tag characters,
-- default "+").
local outpost = require "outpost"

local M = {}

local MAX_LOCAL, MAX_ADDRESS = 64, 254

function M.parse(s, opts)
    if type(s) ~= "string" then error("address.parse: string expected, got " .. type(s), 2) end
    opts = opts or {}
    s = s:match("^%s*(.-)%s*$")
    if s:sub(1, 1) == "<" and s:sub(-1) == ">" then s = s:sub(2, -2) end
    if s == "" then return { null = true } end
    local at = s:match("^.*()@")
    if not at or at == 1 or at == #s then return nil, "badaddress" end
    local lp, dom = s:sub(1, at - 1), s:sub(at + 1)
    if #lp > MAX_LOCAL or #s > MAX_ADDRESS or lp:find("[%c%s]") and lp:sub(1, 1) ~= '"' then
        return nil, "badaddress"
    end
    local domain = outpost.domain(dom)
    if not domain then return nil, "badaddress" end
    local tag
    if opts.strip_tag ~= false and lp:sub(1, 1) ~= '"' then
        local seps = opts.separators or "+"
        for i = 1, #lp do
            if seps:find(lp:sub(i, i), 1, true) and i > 1 then
                tag = lp:sub(i + 1)
                lp = lp:sub(1, i - 1)
                break
            end
        end
    end
    if not opts.keep_case then lp = lp:lower() end
    return { local_part = lp, domain = domain, tag = tag }
end

function M.normalize(s, opts)
    local a, err = M.parse(s, opts)
    if not a then return nil, err end
    if a.null then return "" end
    return a.local_part .. "@" .. a.domain
end

-- The subject a per-sender limit counts.  An authenticated user is counted
-- as that user whatever sender address they give (the null sender and any
-- other address included), so no choice of sender escapes the user's
-- limit.  Without SASL it is the normalised sender; the null sender then
-- counts as "<>@" .. client_address, per sending host.
function M.subject(req, opts)
    local attrs = req.attrs or req
    local user = attrs.sasl_username
    if user and user ~= "" then
        if user:find("@", 1, true) then
            local a = M.normalize(user, opts)
            if a and a ~= "" then return a end
        end
        return user:lower()
    end
    local sender = attrs.sender or ""
    local a = M.normalize(sender, opts)
    if a and a ~= "" then return a end
    return "<>@" .. (attrs.client_address or "unknown")
end

return M
