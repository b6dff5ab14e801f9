#!/usr/bin/awk -f
# The table of bench/run.sh.  Input: the rss file ("target KiB processes"),
# then the results ("target conns round cpu=S requests=N ... rps=R p50_us=N
# p99_us=N max_us=N", one line per run).  -v conns_list, -v targets.
# Per (target, conns): medians over rounds of req/s, p50, p99 and CPU per
# 1,000 requests, the maximum of max; ratios to the ceiling and to each peer
# are medians of per-round ratios (two runs seconds apart), which cancels a
# slow drift of the machine better than a ratio of medians.
function median(arr, n,    i, j, x, s) {
    for (i = 1; i <= n; i++) s[i] = arr[i]
    for (i = 2; i <= n; i++) {
        x = s[i]
        for (j = i - 1; j >= 1 && s[j] > x; j--) s[j + 1] = s[j]
        s[j + 1] = x
    }
    return n == 0 ? 0 : n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
FNR == NR { rss[$1] = $2; procs[$1] = $3; next }
{
    delete v
    for (i = 4; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    k = $1 SUBSEP $2
    n[k]++
    rps[k, $3] = v["rps"] + 0
    p50[k, n[k]] = v["p50_us"] + 0; p99[k, n[k]] = v["p99_us"] + 0
    cpu1k[k, n[k]] = v["requests"] > 0 ? v["cpu"] * 1000 / v["requests"] : 0
    if (!(k in mx) || v["max_us"] + 0 > mx[k]) mx[k] = v["max_us"] + 0
    rounds[$3] = 1
}
END {
    nc = split(conns_list, cl, " "); nt = split(targets, tl, " ")
    # the references a ratio is taken to: the ceiling and each peer present
    nref = 0
    for (ti = 1; ti <= nt; ti++)
        if (tl[ti] ~ /^(ceiling|postfwd|prl-disk|prl-tmpfs)$/) ref[++nref] = tl[ti]
    printf "%-13s %5s %8s %7s %7s %8s %8s", "target", "conns", "req/s", "p50_us", "p99_us", "max_us", "cpu_ms/1k"
    for (r = 1; r <= nref; r++) printf " %10s", "x" ref[r]
    printf "\n"
    for (ci = 1; ci <= nc; ci++) for (ti = 1; ti <= nt; ti++) {
        t = tl[ti]; k = t SUBSEP cl[ci]; m = 0
        for (rd in rounds) { m++; a1[m] = rps[k, rd] }
        m = n[k]
        for (r = 1; r <= m; r++) { a2[r] = p50[k, r]; a3[r] = p99[k, r]; a4[r] = cpu1k[k, r] }
        printf "%-13s %5d %8.0f %7.0f %7.0f %8d %8.1f", t, cl[ci], median(a1, m), median(a2, m),
               median(a3, m), mx[k], median(a4, m) * 1000
        for (r = 1; r <= nref; r++) {
            kr = ref[r] SUBSEP cl[ci]; q = 0
            for (rd in rounds) if (rps[kr, rd] > 0) { q++; a5[q] = rps[k, rd] / rps[kr, rd] }
            if (ref[r] == t) printf " %10s", "-"
            else printf " %10.2f", median(a5, q)
        }
        printf "\n"
    }
    printf "\npeak RSS (VmHWM, summed over the server's processes):\n"
    for (ti = 1; ti <= nt; ti++)
        printf "  %-13s %7.1f MiB  (%d process%s)\n", tl[ti], rss[tl[ti]] / 1024, procs[tl[ti]], procs[tl[ti]] == 1 ? "" : "es"
    print "cpu_ms/1k = server CPU milliseconds (user+sys, all its processes) per 1,000 requests, in the measured window"
    print "xNAME = req/s divided by NAME's req/s (median of per-round ratios)"
}
