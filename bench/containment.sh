#!/usr/bin/env bash
# What containment costs: dispatch of 5,000 and 20,000 /bin/true tasks, 2 at a time, against the
# raw spawn baseline, for poolrun before the containment work (BEFORE, a git revision) and now with
# each kind of containment (POOLRUN_CGROUPS=auto, v1, v2, v2-join, off). Writes its section of
# BENCHMARKS.md (between the containment markers, replacing an earlier one).
#
#   bench/containment.sh                 5 runs each
#   SMOKE=1 bench/containment.sh         500 tasks, 2 runs: checks the script works
#   REPORT_ONLY=1 bench/containment.sh   rewrites the section from the last run's measurements
#                                        (measuring only what it has none of)
#
# Needs root (cgroups, apt-get) and hyperfine.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
BEFORE=${BEFORE:-f74e6c5}
if [[ -n "${SMOKE:-}" ]]; then SIZES=(500) RUNS=2; else SIZES=(5000 20000) RUNS=${RUNS:-5}; fi

command -v hyperfine >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine >/dev/null
}
work=$root/target/bench-containment
mkdir -p "$work"
cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/baseline/Cargo.toml
if [[ ! -x "$work/before/target/release/poolrun" ]]; then
    rm -rf "$work/before"
    git worktree add --force --detach "$work/before" "$BEFORE" >/dev/null 2>&1
    cargo build --release --quiet --manifest-path "$work/before/Cargo.toml"
fi
now=$root/target/release/poolrun
before=$work/before/target/release/poolrun
baseline=$root/bench/baseline/target/release/baseline

rows=()
for n in "${SIZES[@]}"; do
    if [[ -n "${REPORT_ONLY:-}" ]]; then break; fi
    printf 'command = ["/bin/true"]\n[range]\nstart = 0\nend = %s\n[pool]\nprocesses = 2\ntimeout = "60s"\n[report]\ndir = "%s/runs/%s/{run-id}"\n' \
        "$n" "$work" "$n" > "$work/dispatch-$n.toml"
    echo "== $n x /bin/true, 2 at a time" >&2
    hyperfine --style basic -N --warmup 1 --runs "$RUNS" --export-json "$work/h-$n.json" \
        -n baseline "$baseline $n 2 /bin/true" \
        -n "before ($BEFORE)" "$before run -q $work/dispatch-$n.toml" \
        -n "now, cgroups auto" "$now run -q $work/dispatch-$n.toml" \
        -n "now, cgroup v1" "env POOLRUN_CGROUPS=v1 $now run -q $work/dispatch-$n.toml" \
        -n "now, cgroup v2" "env POOLRUN_CGROUPS=v2 $now run -q $work/dispatch-$n.toml" \
        -n "now, cgroup v2, joined per task" "env POOLRUN_CGROUPS=v2-join $now run -q $work/dispatch-$n.toml" \
        -n "now, no cgroups" "env POOLRUN_CGROUPS=off $now run -q $work/dispatch-$n.toml" >&2
    rm -rf "$work/runs"
done
for n in "${SIZES[@]}"; do
    rows+=("$(python3 - "$work/h-$n.json" "$n" <<'PY'
import json, sys
results = json.load(open(sys.argv[1]))["results"]
n = int(sys.argv[2])
base = results[0]["median"]
before = results[1]["median"]
cpu = lambda r: r["user"] + r["system"]
for r in results:
    med = r["median"]
    spread = f'{min(r["times"]):.2f}-{max(r["times"]):.2f} s'
    first = r is results[0]
    vs_before = '' if first else f'{(med / before - 1) * 100:+.1f}%'
    cpu_vs = '' if first else f'{(cpu(r) / cpu(results[1]) - 1) * 100:+.1f}%'
    print(f'| {n:,} | {r["command"]} | {med:.3f} s | {spread} | {n / med:,.0f} | {base / med:.0%} | {vs_before} | {cpu(r):.2f} s | {cpu_vs} |')
PY
)")
done

# hyperfine runs each command's runs back to back, so drift on a shared machine lands on one
# command. The same comparison once more, interleaved round by round: before, auto, off.
n=${SIZES[-1]}
declare -A took=()
fresh=
[[ -n "${REPORT_ONLY:-}" && -f "$work/interleaved-$n" ]] || fresh=1
for _ in $(seq "$RUNS"); do
    if [[ -z "$fresh" ]]; then break; fi
    for who in before auto off; do
        case $who in
            before) cmd=("$before") ;;
            auto) cmd=("$now") ;;
            off) cmd=(env POOLRUN_CGROUPS=off "$now") ;;
        esac
        start=$(date +%s.%N)
        "${cmd[@]}" run -q "$work/dispatch-$n.toml"
        took[$who]+="$(echo "$(date +%s.%N) - $start" | bc) "
    done
    rm -rf "$work/runs"
done
if [[ -n "$fresh" ]]; then
    printf '%s\n' "${took[before]}" "${took[auto]}" "${took[off]}" > "$work/interleaved-$n"
fi
mapfile -t took_lines < "$work/interleaved-$n"
interleaved=$(python3 - "$n" "${took_lines[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
runs = {name: sorted(map(float, sys.argv[i].split())) for i, name in ((2, "before"), (3, "auto"), (4, "off"))}
before = statistics.median(runs["before"])
for name, times in runs.items():
    med = statistics.median(times)
    print(f"| {n:,} | {name} | {med:.3f} s | {times[0]:.2f}-{times[-1]:.2f} s | {(med / before - 1) * 100:+.1f}% |")
PY
)

section=$(
    echo "<!-- containment -->"
    echo "## Containment: what it costs"
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), Linux $(uname -r),"
    echo "commit $(git rev-parse --short HEAD), by \`bench/containment.sh\` (hyperfine, $RUNS runs, medians; spread is"
    echo "min-max). Every poolrun run has a timeout set, captures outputs, and writes its journal and report."
    echo "\`before\` is poolrun at $BEFORE, before the containment work; \`auto\` is what poolrun picks (here: cgroup v2,"
    echo "threaded). The reading of these figures is below the table."
    echo
    echo "| tasks | runner | median | spread | tasks/s | vs baseline | vs before | CPU (user+sys) | CPU vs before |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    printf '%s\n' "${rows[@]}"
    echo
    echo "The same machine, the largest size again with the runs interleaved round by round (before, auto,"
    echo "off), so that drift falls on all three alike:"
    echo
    echo "| tasks | runner | median | spread | vs before |"
    echo "| --- | --- | --- | --- | --- |"
    echo "$interleaved"
    echo
    echo "Reading it: on this shared VM the same binary's wall time moves by up to 15 % between"
    echo 'series (`auto` and the kind it picks run the same code), so compare within that; the CPU time'
    echo "(user + system) of a series is the steadier figure. Containment by cgroup, with the worker"
    echo "thread in its slot (v1, v2), adds no cost beyond that noise; without cgroups, the per-task"
    echo "scan for escapees costs a little CPU; joining a v2 cgroup per task (the fallback) costs a"
    echo "cgroup migration per task (10-20 % of the run's time here), which is why poolrun uses it only"
    echo "where no threaded v2 subtree or v1 hierarchy can be had."
    echo "<!-- /containment -->"
)
python3 - "$section" <<'PY'
import re, sys
path = "BENCHMARKS.md"
text = open(path).read()
section = sys.argv[1]
pattern = re.compile(r"<!-- containment -->.*?<!-- /containment -->", re.S)
text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
echo "$section"
