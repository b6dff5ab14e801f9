# What every private Postfix of the tests shares (sourced by svc_smtp.sh
# and spec/e2e/postfix.sh); ../shared/recipes/REAL-COMPONENTS.md, section 6:
# always -c DIR (there is no /etc/postfix/main.cf), maillog_file under
# maillog_file_prefixes or postfix start fails silently, no chroot.
#
#   postfix_private DIR NAME   DIR/{etc,queue,data,log}; DIR/etc/main.cf with
#                              the basics (private queue, its own log file,
#                              loopback only, syslog name postfix-outpost-NAME);
#                              the caller appends its own lines
#   master.cf: the caller's services, then postfix-master.services.
postfix_private() {
    local dir=$1
    mkdir -p "$dir/etc" "$dir/queue" "$dir/data" "$dir/log"
    chmod 755 "$dir"
    chown postfix "$dir/data"
    cat > "$dir/etc/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $dir/queue
data_directory = $dir/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
syslog_name = postfix-outpost-$2
maillog_file = $dir/log/maillog
maillog_file_prefixes = $dir
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
alias_maps =
alias_database =
biff = no
smtpd_peername_lookup = no
EOF
}
