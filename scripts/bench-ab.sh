#!/usr/bin/env bash
# A/B benchmark: bench/bench.escript of a base revision (A) against this tree (B),
# run alternately, one round each, AB_RUNS times (default 5), so both see the same
# noise. Prints, per metric, the median of A, the median of B and B/A, then the
# best run of each (the least for times, the most for rates: noise on these
# machines only ever slows a run, and whole runs fall into a slow mode) and its
# B/A, with "worse" where B is more than 10% worse in both (lower is better for
# times, higher for rates and speed-ups). AB_ANALYZE=1 prints the table of the
# last runs again without running anything.
#
#   scripts/bench-ab.sh REV        (REV: a commit, e.g. HEAD~3 or a branch)
#
# The base is checked out and built under _build/ab/ (a git worktree).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rev=${1:?usage: scripts/bench-ab.sh REV}
runs=${AB_RUNS:-5}
base=_build/ab/base
out=_build/ab
mkdir -p "$out"

if [ "${AB_ANALYZE:-0}" = 1 ]; then
    runs=0
elif [ -d "$base" ]; then
    git -C "$base" checkout -q --detach "$rev"
else
    git worktree add -q --detach "$base" "$rev"
fi
[ "$runs" = 0 ] || echo "== building A ($(git -C "$base" log -1 --format='%h %s' | cut -c1-70))"
[ "$runs" = 0 ] || make -C "$base" build >"$out/build-a.log" 2>&1 || { tail -20 "$out/build-a.log"; exit 1; }
[ "$runs" = 0 ] || echo "== building B ($(git log -1 --format='%h %s' | cut -c1-70), working tree)"
[ "$runs" = 0 ] || make build >"$out/build-b.log" 2>&1 || { tail -20 "$out/build-b.log"; exit 1; }

if [ "$runs" != 0 ]; then
    : >"$out/a.txt"
    : >"$out/b.txt"
fi
for i in $(seq 1 "$runs"); do
    echo "== run $i of $runs"
    BENCH_ROUNDS=1 escript "$base/bench/bench.escript" "$PWD/$base/erlang/priv/pyport" >>"$out/a.txt"
    BENCH_ROUNDS=1 escript bench/bench.escript "$PWD/erlang/priv/pyport" >>"$out/b.txt"
done

# metric value: the first two fields of each metric line; a/b values give one
# metric per part, and N:V fields (callback_cost_us_per_call) one per N.
extract() {
    awk '/^[a-z][a-z0-9_]* [0-9]/ {
        if ($2 ~ /^[0-9]+:/) {
            for (i = 2; i <= NF && $i ~ /^[0-9]+:[0-9.]+$/; i++) { split($i, kv, ":"); print $1 "_" kv[1], kv[2] }
            next
        }
        n = split($2, v, "/");
        if (n == 1) print $1, v[1]; else for (i = 1; i <= n; i++) print $1 "#" i, v[i];
    }' "$1"
}
extract "$out/a.txt" >"$out/a.vals"
extract "$out/b.txt" >"$out/b.vals"
echo
printf '%-36s %11s %11s %7s %11s %11s %7s\n' metric "A median" "B median" "B/A" "A best" "B best" "B/A"
awk '
function median(list,   n, arr, i, j, t) {
    n = split(list, arr, " ");
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (arr[j] + 0 < arr[i] + 0) { t = arr[i]; arr[i] = arr[j]; arr[j] = t }
    return (n % 2) ? arr[(n + 1) / 2] : (arr[n / 2] + arr[n / 2 + 1]) / 2;
}
function best(list, higher,   n, arr, i, v) {
    n = split(list, arr, " ");
    v = arr[1] + 0;
    for (i = 2; i <= n; i++) if (higher ? arr[i] + 0 > v : arr[i] + 0 < v) v = arr[i] + 0;
    return v;
}
FNR == NR { a[$1] = a[$1] " " $2; if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 } next }
{ b[$1] = b[$1] " " $2 }
END {
    for (i = 1; i <= k; i++) {
        m = order[i]; if (!(m in b)) continue;
        ma = median(a[m]); mb = median(b[m]);
        r = (ma == 0) ? 0 : mb / ma;
        higher = (m ~ /per_s|speedup/);
        ba = best(a[m], higher); bb = best(b[m], higher);
        rb = (ba == 0) ? 0 : bb / ba;
        worse = higher ? (r < 0.9 && rb < 0.9) : (r > 1.1 && rb > 1.1);
        printf "%-36s %11.1f %11.1f %6.2fx %11.1f %11.1f %6.2fx%s\n", m, ma, mb, r, ba, bb, rb, worse ? "  worse" : "";
    }
}' "$out/a.vals" "$out/b.vals"
