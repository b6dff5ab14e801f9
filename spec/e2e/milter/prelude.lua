-- Shared by the miltertest scripts: connect to the daemon under test (port
-- comes from -D port=N) and fail loudly.
function check(cond, what)
    if not cond then error("FAILED: " .. what, 2) end
end

function connect()
    local conn = mt.connect("inet:" .. port .. "@127.0.0.1", 20, 0.1)
    check(conn ~= nil, "connect")
    mt.set_timeout(10)
    return conn
end

function envelope(conn, sender, user)
    -- no on_connect in the policy: negotiated as needing no reply
    check(mt.conninfo(conn, "client.example.org", "192.0.2.7") == nil, "conninfo")
    if user then mt.macro(conn, SMFIC_MAIL, "{auth_authen}", user) end
    check(mt.mailfrom(conn, sender) == nil, "mailfrom")
end

function message(conn, from, body)
    check(mt.rcptto(conn, "bob@example.net") == nil, "rcptto")
    check(mt.getreply(conn) == SMFIR_CONTINUE, "continue after rcpt")
    check(mt.header(conn, "From", from) == nil, "header From")
    check(mt.header(conn, "Subject", "hello") == nil, "header Subject")
    check(mt.eoh(conn) == nil, "eoh")
    check(mt.bodystring(conn, body) == nil, "body")
    check(mt.eom(conn) == nil, "eom")
end
