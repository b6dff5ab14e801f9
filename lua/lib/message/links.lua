-- links: the hosts a text links to, for G4 (no URL shorteners).
--
--   links.hosts(text [, is_html])  -> { "bit.ly", "example.org", ... } in order,
--                                     each in lower case without a trailing dot
--   links.html_text(html)          -> html with character references decoded
--
-- What counts as a link to a host:
--   scheme://[user@]host[:port]...   (http, https and any other scheme)
--   //host/...                       (protocol-relative, as in href="//bit.ly/x")
--   host/path                        (a bare mention, "bit.ly/3xYz")
--   www.host                         (bare, even without a path)
-- In HTML, character references are decoded first (bit&#46;ly is bit.ly),
-- so href values, text and the rest are read alike.
--
-- Linear in the text: it is cut into words at white space and HTML/quote
-- punctuation by one gmatch, and each word is looked at with anchored
-- patterns and plain finds only (no backtracking search over the text).
local M = {}

M.MAX_WORD = 2048   -- a longer word is read up to here (a host comes first)
M.MAX_HOSTS = 10000
M.MAX_LINKS_PER_WORD = 16

local NAMED = { amp = "&", lt = "<", gt = ">", quot = '"', apos = "'", period = ".",
    sol = "/", colon = ":", nbsp = " ", commat = "@", dot = "." }

local function utf8_char(n)
    if n < 0x80 then return string.char(n) end
    if n < 0x800 then
        return string.char(0xC0 + math.floor(n / 64), 0x80 + n % 64)
    end
    if n < 0x10000 then
        return string.char(0xE0 + math.floor(n / 4096), 0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
    end
    if n < 0x110000 then
        return string.char(0xF0 + math.floor(n / 262144), 0x80 + math.floor(n / 4096) % 64,
            0x80 + math.floor(n / 64) % 64, 0x80 + n % 64)
    end
    return ""
end

function M.html_text(html)
    html = html:gsub("&#[xX](%x%x?%x?%x?%x?%x?);?", function(h) return utf8_char(tonumber(h, 16)) end)
    html = html:gsub("&#(%d%d?%d?%d?%d?%d?%d?);?", function(d) return utf8_char(tonumber(d)) end)
    return (html:gsub("&(%a+);", function(n) return NAMED[n:lower()] end))
end

local HOST = "^[%w%-%.\128-\255]+$"

-- host of an authority: drop user info, port, trailing dots
local function host_of(authority)
    authority = authority:match("^[^/?#\\]*") or ""
    local at = authority:find("@[^@]*$")
    if at then authority = authority:sub(at + 1) end
    authority = authority:gsub(":%d*$", ""):gsub("%.+$", "")
    if authority:find("%.") and authority:find(HOST) then return authority end
    return nil
end

function M.hosts(text, is_html)
    if is_html then text = M.html_text(text) end
    local hosts = {}
    local function add(h)
        if h and #hosts < M.MAX_HOSTS then hosts[#hosts + 1] = h end
    end
    for word in text:gmatch("[^%s<>\"'()%[%]{}=,;|\\^`]+") do
        if #word > M.MAX_WORD then word = word:sub(1, M.MAX_WORD) end
        word = word:lower()
        local found = false
        local from = 1
        for _ = 1, M.MAX_LINKS_PER_WORD do -- "http://a/?u=https://bit.ly/x" has two
            local i = word:find("//", from, true)
            if not i then break end
            found = true
            add(host_of(word:sub(i + 2, i + 2 + 260))) -- a host name has at most 253 bytes
            from = i + 2
        end
        if not found then
            local lead = word:gsub("^[%p]+", "") -- "*bit.ly/x*", ">>bit.ly/x"
            local slash = lead:find("/", 1, true)
            if slash then
                add(host_of(lead:sub(1, slash - 1)))
            elseif lead:sub(1, 4) == "www." then
                add(host_of(lead))
            end
        end
    end
    return hosts
end

return M
