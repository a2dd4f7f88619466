#!/usr/bin/env bash
# Runs one command the way docs/performance.md's figures were taken, and says how quiet the
# machine was meanwhile: it waits (up to QUIET_WAIT seconds, default 600) until the machine's
# CPUs have been idle for a few seconds, runs the command, then prints on stderr one line
#
#   measure: wall=S own_cpu=S foreign_cpu=S cores=N load_before=L
#
# where own_cpu is the command's user+system time and foreign_cpu the CPU time everything else
# on the machine used during the run (from /proc/stat). A figure taken with foreign_cpu well
# above zero was shared with other work and is not comparable.
#
#   benches/measure.sh target/release/purse bench > report.json
set -euo pipefail

quiet_wait=${QUIET_WAIT:-600}
ticks=$(getconf CLK_TCK)

busy_ticks() { # user+nice+system+irq+softirq+steal over all CPUs, in clock ticks
    awk '/^cpu /{print $2+$3+$4+$7+$8+$9}' /proc/stat
}

waited=0
while :; do
    before=$(busy_ticks); sleep 5; after=$(busy_ticks)
    # Below 0.25 s of CPU in 5 s over all cores counts as quiet.
    if (( (after - before) * 100 < 25 * ticks )); then break; fi
    if (( waited >= quiet_wait )); then echo "measure: the machine did not get quiet, running anyway" >&2; break; fi
    waited=$((waited + 5))
done

load_before=$(cut -d' ' -f1 /proc/loadavg)
times=$(mktemp)
start_busy=$(busy_ticks)
start_ns=$(date +%s%N)
status=0
/usr/bin/time -f '%U %S' -o "$times" "$@" || status=$?
end_ns=$(date +%s%N)
end_busy=$(busy_ticks)
read -r user system < <(tail -1 "$times")
rm -f "$times"
awk -v wall_ns=$((end_ns - start_ns)) -v busy=$((end_busy - start_busy)) -v tck="$ticks" \
    -v user="$user" -v sys="$system" -v cores="$(nproc)" -v load="$load_before" 'BEGIN {
        own = user + sys; foreign = busy / tck - own; if (foreign < 0) foreign = 0
        printf "measure: wall=%.2f own_cpu=%.2f foreign_cpu=%.2f cores=%d load_before=%s\n",
            wall_ns / 1e9, own, foreign, cores, load > "/dev/stderr"
    }'
exit "$status"
