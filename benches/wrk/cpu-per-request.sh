#!/usr/bin/env bash
# Where a request's CPU goes: drives the echo and `POST /v1/evaluate` of the load bench's servers
# with wrk (one at a time), and prints, per scenario, req/s and the CPU microseconds per request of
# each server thread group (tokio workers, the decision log's writer, sled's I/O threads) and of
# wrk itself, read from /proc before and after the run.
#
#   benches/wrk/cpu-per-request.sh [secs]        # needs wrk and python3; Linux only
#
# The bench binary is built (release) and started with LOAD_SERVE; its data directory is removed
# afterwards.
set -euo pipefail
cd "$(dirname "$0")/../.."
secs=${1:-5}
command -v wrk >/dev/null || { echo "wrk not found (apt-get install wrk)"; exit 1; }

bin=$(cargo bench -p accord-server --bench load --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bin" ] || { echo "could not find the load bench executable"; exit 1; }
bodies=$(mktemp)
data=$(mktemp -d)
python3 - "$bodies" <<'EOF'
import json, sys
txs = json.load(open("engine/benches/mix.json"))["transactions"]
with open(sys.argv[1], "w") as out:
    for i in range(1000):
        t = dict(txs[i % len(txs)]); t["id"] = f"bench-{i}"
        out.write(json.dumps(t, separators=(",", ":")) + "\n")
EOF
log=$(mktemp)
LOAD_DATA_DIR=$data LOAD_SERVE=$((secs * 2 + 60)) "$bin" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true; rm -rf "$bodies" "$data" "$log"' EXIT
for _ in $(seq 120); do grep -q '^serving:' "$log" && break; sleep 0.5; done
accord=$(sed -n 's/^serving: accord \(http[^ ]*\).*/\1/p' "$log")
echo_url=$(sed -n 's/.* echo \(http[^ ]*\)$/\1/p' "$log")
[ -n "$accord" ] && [ -n "$echo_url" ] || { cat "$log"; exit 1; }

# CPU ticks per thread group of a process: "group ticks" lines.
ticks() {
    for t in /proc/"$1"/task/*; do
        printf '%s %s\n' "$(tr ' ' _ <"$t/comm" | sed 's/-[0-9]*$//')" \
            "$(awk '{print $14 + $15}' "$t/stat")"
    done | awk '{a[$1] += $2} END {for (k in a) print k, a[k]}' | sort
}

for target in "echo $echo_url" "evaluate $accord/v1/evaluate"; do
    set -- $target
    before=$(ticks $server)
    BODIES=$bodies wrk -t1 -c64 -d"${secs}s" --latency -s benches/wrk/post.lua "$2" >"$log.wrk" &
    wrk_pid=$!
    sleep 0.1
    wrk_before=$(awk '{print $14 + $15}' /proc/$wrk_pid/stat)
    sleep "$(python3 -c "print($secs - 0.3)")"
    wrk_after=$(awk '{print $14 + $15}' /proc/$wrk_pid/stat)
    wait $wrk_pid
    after=$(ticks $server)
    rps=$(awk '/^Requests\/sec/ {print $2}' "$log.wrk")
    p99=$(awk '$1 == "99%" {print $2}' "$log.wrk")
    python3 - "$1" "$rps" "$p99" "$secs" "$wrk_before" "$wrk_after" "$before" "$after" <<'EOF'
import sys
name, rps, p99, secs, w0, w1, before, after = sys.argv[1:]
rps, secs = float(rps), float(secs)
tick = 0.01  # USER_HZ
parse = lambda s: {k: float(v) for k, v in (l.split() for l in s.splitlines())}
b, a = parse(before), parse(after)
us = lambda ticks, span: ticks * tick / span / rps * 1e6
groups = {k: us(a[k] - b.get(k, 0), secs) for k in a if a[k] - b.get(k, 0) > 0}
server = sum(groups.values())
print(f"{name}: {rps:,.0f} req/s, p99 {p99}; CPU per request: server {server:.1f} us "
      f"({', '.join(f'{k} {v:.1f}' for k, v in sorted(groups.items(), key=lambda kv: -kv[1]))}), "
      f"wrk {us(float(w1) - float(w0), secs - 0.4):.1f} us")
EOF
done
rm -f "$log.wrk"
