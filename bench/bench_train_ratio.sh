#!/bin/sh
# bench_train_ratio.sh — one CPU training epoch against its arithmetic floor,
# interleaved in one run (floor, epoch, floor, epoch, ...): the medians, their
# min-max and the ratio epoch / floor, with the load average at start and end.
#
#   bench/bench_train_ratio.sh BUILD_DIR [ROUNDS] [QUERIES] [MODELS] [STRATEGIES] [ENV ...]
#
# Each ENV (e.g. OMP_WAIT_POLICY=passive, GOMP_SPINCOUNT=10000) adds one more
# epoch per round run with that setting, in the same interleaved order, and
# its own ratio: how OpenMP's waiting policy, which libgomp reads only when
# it loads, changes the epoch on this machine at this load.
#
# Defaults: 3 rounds, 800,000 queries x 4 x 4 = 16 pairs (issue 14's target:
# an epoch within 2x of the floor). The floor is bench_train_floor's sum of
# per-part medians (GEMMs at one large GEMM's rate, per-pair ops, Adam); the
# epoch is bench_train --device cpu's epoch seconds (the trainer's own log:
# first batch to parameters back), no validation split, no peer. One more
# floor closes the run (floor, epoch, ..., floor), so even one round has the
# floor on both sides of its epoch. Each epoch process's peak RSS (GNU time's
# maximum resident set) is printed, whole and per training row: the
# generated embeddings and labels, the model and the trainer's buffers.
set -eu
B=${1:?usage: bench_train_ratio.sh BUILD_DIR [ROUNDS] [QUERIES] [MODELS] [STRATEGIES] [ENV ...]}
R=${2:-3} N=${3:-800000} M=${4:-4} S=${5:-4}
[ $# -gt 5 ] && shift 5 || set --
[ -x "$B/bench/bench_train_floor" ] && [ -x "$B/bench/bench_train" ] || { echo "no bench_train(_floor) in $B/bench" >&2; exit 2; }
T=$(mktemp -d) && trap 'rm -rf "$T"' EXIT
l0=$(cut -d' ' -f1 /proc/loadavg)
[ -x /usr/bin/time ] || { echo "bench_train_ratio.sh: needs GNU time (/usr/bin/time) for the peak RSS" >&2; exit 2; }
floor() {
    "$B/bench/bench_train_floor" --queries "$N" --models "$M" --strategies "$S" >"$T/floor.out"
    sed -n 's/^floor of one epoch: \([0-9.]*\) s.*/\1/p' "$T/floor.out" >>"$T/floor"
}
i=1
while [ "$i" -le "$R" ]; do
    floor
    k=0
    for e in "" "$@"; do
        env $e /usr/bin/time -f %M -o "$T/rss" "$B/bench/bench_train" --device cpu --queries "$N" --models "$M" \
            --strategies "$S" --epochs 1 --peer-queries 0 >"$T/epoch.out" 2>/dev/null
        awk '/s\/epoch/ { for (f = 1; f < NF; f++) if ($(f + 1) == "s/epoch") print $f }' "$T/epoch.out" >>"$T/epoch$k"
        tail -n1 "$T/rss" >>"$T/rss$k"
        echo "round $i: floor $(tail -n1 "$T/floor") s, epoch${e:+ with $e} $(tail -n1 "$T/epoch$k") s," \
            "peak RSS $(tail -n1 "$T/rss$k") KiB" >&2
        k=$((k + 1))
    done
    i=$((i + 1))
done
floor
echo "closing floor: $(tail -n1 "$T/floor") s" >&2
l1=$(cut -d' ' -f1 /proc/loadavg)
grep -E '^GEMM rate|^per batch' "$T/floor.out"
python3 - "$T" "$N" "$M" "$S" "$R" "$l0" "$l1" "" "$@" <<'EOF'
import statistics, sys
t, n, m, s, r, l0, l1 = sys.argv[1:8]
f = [float(x) for x in open(f"{t}/floor")]
assert len(f) == int(r) + 1 and all(x > 0 for x in f), "a round printed no floor"
mf = statistics.median(f)
print(f"training epoch vs floor: {n} queries x {int(m) * int(s)} pairs, {r} interleaved rounds, load average {l0} at start, {l1} at the end")
print(f"floor  median {mf:.2f} s of {len(f)} (min {min(f):.2f}, max {max(f):.2f})")
for k, env in enumerate(sys.argv[8:]):
    e = [float(x) for x in open(f"{t}/epoch{k}")]
    assert len(e) == int(r) and all(x > 0 for x in e), "a round printed no epoch"
    me, label = statistics.median(e), f"epoch with {env}" if env else "epoch"
    print(f"{label}  median {me:.2f} s (min {min(e):.2f}, max {max(e):.2f})")
    print(f"ratio {label} / floor: {me / mf:.2f}x (target <= 2x: {'met' if me / mf <= 2 else 'NOT met'})")
    rss = max(int(x) for x in open(f"{t}/rss{k}")) * 1024
    print(f"{label}  peak RSS {rss / 2**20:.0f} MiB, {rss / int(n):.0f} bytes per training row")
EOF
