#!/usr/bin/env bash
# fuzz/run.sh TARGET SECONDS [afl-fuzz options...]
#
# Builds the AFL targets (cargo afl, instrumented, profile `fuzz`, in fuzz/target/), writes the seed corpus from
# the repository (fuzz/corpus/TARGET/), replays the regression inputs (fuzz/regressions/),
# then runs afl-fuzz on TARGET for SECONDS, resuming an earlier run's queue in fuzz/out/TARGET/.
# Findings land in fuzz/out/TARGET/default/{crashes,hangs}/. Targets: transaction, block,
# governance, bundle. CONTRIBUTING.md ("Fuzzing") has the details; fuzz/setup.sh installs AFL++.
#
# Environment: AFL_CORES=N runs N instances (one main, N-1 secondaries; default 1);
# FUZZ_SKIP_BUILD=1 reuses the binaries already built.
set -euo pipefail

usage() {
    echo "usage: fuzz/run.sh TARGET SECONDS [afl-fuzz options...]" >&2
    echo "targets: transaction block governance bundle" >&2
    exit 2
}
[ $# -ge 2 ] || usage
target=$1
seconds=$2
shift 2
case "$target" in
    transaction) timeout_ms=2000 ;;
    block | governance) timeout_ms=10000 ;;
    bundle) timeout_ms=20000 ;;
    *) usage ;;
esac
[[ "$seconds" =~ ^[0-9]+$ ]] || usage

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
if ! cargo afl --version 2>/dev/null | grep -q 'AFL++ version'; then
    echo "cargo-afl or its AFL++ build is missing: run fuzz/setup.sh" >&2
    exit 1
fi

# Keep builds light on a shared machine (as the repository's own builds).
export CARGO_INCREMENTAL=0
if [ "${FUZZ_SKIP_BUILD:-0}" != 1 ]; then
    # Their own target directory: instrumented builds of every crate, kept apart from the
    # workspace's ordinary builds.
    CARGO_TARGET_DIR="$here/target" cargo afl build --profile fuzz -p accord-fuzz --features afl --bins
fi
bin="$here/target/fuzz"

# The seeds, written afresh (runs of different targets may share fuzz/corpus/).
seeds="$here/corpus/$target"
tmp=$(mktemp -d)
"$bin/fuzz-tool" seeds "$tmp" >/dev/null
rm -rf "$seeds"
mkdir -p "$here/corpus"
mv "$tmp/$target" "$seeds"
rm -rf "$tmp"
if [ -d "$here/regressions/$target" ] && [ -n "$(ls -A "$here/regressions/$target")" ]; then
    cp "$here/regressions/$target"/* "$seeds/"
    "$bin/fuzz-tool" replay "$target" "$here/regressions/$target"
fi

out="$here/out/$target"
mkdir -p "$out"
# A shared machine: do not pin cores, do not insist on the CPU governor or a crash handler.
export AFL_NO_AFFINITY=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1
export AFL_AUTORESUME=1 AFL_NO_UI=1
# The seeds include inputs that compile a whole bundle: give calibration its time.
export AFL_FAST_CAL=1
common=(-i "$seeds" -o "$out" -t "$timeout_ms+" -m none -x "$here/dict/accord.dict" -V "$seconds")

pids=()
cores=${AFL_CORES:-1}
for ((i = 1; i < cores; i++)); do
    cargo afl fuzz "${common[@]}" -S "s$i" "$@" -- "$bin/$target" >"$out/s$i.log" 2>&1 &
    pids+=($!)
done
status=0
cargo afl fuzz "${common[@]}" -M default "$@" -- "$bin/$target" >"$out/default.log" 2>&1 || status=$?
for pid in "${pids[@]}"; do
    wait "$pid" || true
done

echo "== $target: $seconds s"
for stats in "$out"/*/fuzzer_stats; do
    [ -f "$stats" ] || continue
    awk -F' *: *' -v who="$(basename "$(dirname "$stats")")" '
        $1 ~ /^(execs_done|execs_per_sec|corpus_count|corpus_found|saved_crashes|saved_hangs|stability|bitmap_cvg|run_time)$/ { s[$1] = $2 }
        END {
            printf "%s: %s execs (%s/s), %s paths (%s found), %s crashes, %s hangs, coverage %s, stability %s\n",
                who, s["execs_done"], s["execs_per_sec"], s["corpus_count"], s["corpus_found"],
                s["saved_crashes"], s["saved_hangs"], s["bitmap_cvg"], s["stability"]
        }' "$stats"
done
crashes=$(find "$out" -path '*/crashes/id:*' -type f 2>/dev/null | wc -l)
if [ "$crashes" -gt 0 ]; then
    echo "$crashes crashing inputs under $out/*/crashes/: replay one with" >&2
    echo "  RUST_BACKTRACE=1 $bin/fuzz-tool replay $target FILE" >&2
fi
exit "$status"
