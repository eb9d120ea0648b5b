#!/usr/bin/env bash
# poolrun's benchmarks, in one run: builds poolrun and the raw spawn baseline, installs the peers
# (GNU parallel, hyperfine, rust-parallel), runs every comparison and writes BENCHMARKS.md.
#
#   bench/run.sh            the full run (20,000 tasks; 100,000 for memory; 10^9-item plan)
#   SMOKE=1 bench/run.sh    a small, quick run that checks the script works (numbers meaningless)
#
# Needs root for apt-get (as on this project's machines) and network access to the registries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ -n "${SMOKE:-}" ]]; then
    N=500 MEMORY_TASKS=2000 PLAN_ITEMS=100000 TIMEOUT_TASKS=20 RUNS=2
else
    N=${N:-20000} MEMORY_TASKS=${MEMORY_TASKS:-100000} PLAN_ITEMS=${PLAN_ITEMS:-1000000000}
    TIMEOUT_TASKS=${TIMEOUT_TASKS:-200} RUNS=${RUNS:-5}
fi

need=()
command -v hyperfine >/dev/null || need+=(hyperfine)
command -v parallel >/dev/null || need+=(parallel)
[[ -x /usr/bin/time ]] || need+=(time)
if ((${#need[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v rust-parallel >/dev/null || cargo install --locked --quiet rust-parallel
# GNU parallel asks for a citation once; say it was seen.
mkdir -p ~/.parallel && touch ~/.parallel/will-cite

cargo build --release --quiet
cargo build --release --quiet --manifest-path bench/baseline/Cargo.toml
poolrun=$root/target/release/poolrun
baseline=$root/bench/baseline/target/release/baseline

# Kept after the run (under target/, ignored by git) so a failed step can be looked into.
work=$root/target/bench
rm -rf "$work" && mkdir -p "$work"
seq "$N" > "$work/args"

job() { # name, body
    printf '%s\n[report]\ndir = "%s/runs/%s/{run-id}"\n' "$2" "$work" "$1" > "$work/$1.toml"
}
job dispatch "command = [\"/bin/true\"]
[range]
start = 0
end = $N
[pool]
processes = 2
timeout = \"60s\""
job one "command = [\"/bin/true\"]
[range]
start = 0
end = 1
[pool]
processes = 1"
job memory "command = [\"/bin/true\"]
[range]
start = 0
end = $MEMORY_TASKS
[pool]
processes = 2"
job plan "command = [\"/bin/true\", \"{start}\"]
[range]
start = 0
end = $PLAN_ITEMS"
job timeouts "command = [\"sleep\", \"10\"]
[range]
start = 0
end = $TIMEOUT_TASKS
[pool]
processes = 20
timeout = \"200ms\"
grace-period = \"1s\""

echo "== dispatch: $N x /bin/true, 2 at a time" >&2
hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/dispatch.json" \
    -n baseline "$baseline $N 2 /bin/true" \
    -n poolrun "$poolrun run -q $work/dispatch.toml" \
    -n "xargs -P2" "xargs -P2 -n1 /bin/true < $work/args" \
    -n "rust-parallel -j2" "rust-parallel -j2 /bin/true < $work/args" \
    -n "parallel -j2" "parallel -j2 /bin/true < $work/args" >&2

echo "== startup: one /bin/true task" >&2
hyperfine --style basic -N --warmup 5 --runs $((RUNS * 20)) --export-json "$work/startup.json" \
    -n direct "/bin/true" \
    -n poolrun "$poolrun run -q $work/one.toml" >&2

echo "== memory: $MEMORY_TASKS tasks; plan --json of $PLAN_ITEMS items" >&2
peak() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1; }
run_kib=$(peak "$poolrun" run -q "$work/memory.toml")
plan_start=$(date +%s.%N)
plan_kib=$(peak "$poolrun" plan --json "$work/plan.toml")
plan_seconds=$(echo "$(date +%s.%N) - $plan_start" | bc)
memory_dir=$(ls -d "$work"/runs/memory/2*/)
files=$(find "$memory_dir/tasks" -type f | wc -l)

echo "== timeout precision: $TIMEOUT_TASKS tasks under a 200 ms timeout" >&2
"$poolrun" run -q "$work/timeouts.toml" || true
timeouts_dir=$(ls -d "$work"/runs/timeouts/2*/)

python3 bench/report.py "$work" "$N" "$MEMORY_TASKS" "$PLAN_ITEMS" "$run_kib" "$plan_kib" "$plan_seconds" \
    "$files" "$timeouts_dir" > BENCHMARKS.md
# What containment costs, against poolrun before it: its own section of BENCHMARKS.md.
bench/containment.sh >/dev/null
# What the item sources cost: [lines] planning memory, [values] against [range] dispatch.
bench/sources.sh >/dev/null
# What exporting a report of 1,000,000 tasks costs, format by format.
bench/exports.sh >/dev/null
cat BENCHMARKS.md
