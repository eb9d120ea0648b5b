#!/usr/bin/env bash
# poolrun's benchmarks, in one run: builds poolrun and the raw spawn baseline, installs the peers
# (GNU parallel, hyperfine, rust-parallel), runs every comparison and writes BENCHMARKS.md.
#
#   bench/run.sh            the full run (5,000 and 20,000 tasks; 1,000,000 for memory; a
#                           10^9-item plan), then the containment, sources and exports sections
#   SMOKE=1 bench/run.sh    a small, quick run that checks the script works (numbers meaningless)
#   SECTIONS=exports bench/run.sh   only the exports section after the main run (of
#                           containment, sources, exports; the others keep their last figures)
#
# Needs root for apt-get (as on this project's machines) and network access to the registries.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if [[ -n "${SMOKE:-}" ]]; then
    SIZES="200 500" MEMORY_TASKS=2000 PLAN_ITEMS=100000 TIMEOUT_TASKS=20 RUNS=2
else
    SIZES=${SIZES:-5000 20000} MEMORY_TASKS=${MEMORY_TASKS:-1000000}
    PLAN_ITEMS=${PLAN_ITEMS:-1000000000} TIMEOUT_TASKS=${TIMEOUT_TASKS:-200} RUNS=${RUNS:-5}
fi
SECTIONS=${SECTIONS:-containment sources exports}

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

job() { # name, body
    printf '%s\n[report]\ndir = "%s/runs/%s/{run-id}"\n' "$2" "$work" "$1" > "$work/$1.toml"
}
for n in $SIZES; do
    seq "$n" > "$work/args-$n"
    job "dispatch-$n" "command = [\"/bin/true\"]
[range]
start = 0
end = $n
[pool]
processes = 2
timeout = \"60s\""
done
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

for n in $SIZES; do
    echo "== dispatch: $n x /bin/true, 2 at a time" >&2
    hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$work/dispatch-$n.json" \
        -n baseline "$baseline $n 2 /bin/true" \
        -n poolrun "$poolrun run -q $work/dispatch-$n.toml" \
        -n "xargs -P2" "xargs -P2 -n1 /bin/true < $work/args-$n" \
        -n "rust-parallel -j2" "rust-parallel -j2 /bin/true < $work/args-$n" \
        -n "parallel -j2" "parallel -j2 /bin/true < $work/args-$n" >&2
done

echo "== startup: one /bin/true task" >&2
hyperfine --style basic -N --warmup 5 --runs $((RUNS * 20)) --export-json "$work/startup.json" \
    -n direct "/bin/true" \
    -n poolrun "$poolrun run -q $work/one.toml" \
    -n "poolrun, no cgroups" "env POOLRUN_CGROUPS=off $poolrun run -q $work/one.toml" >&2

echo "== memory: $MEMORY_TASKS tasks, their report; plan --json of $PLAN_ITEMS items" >&2
peak() { /usr/bin/time -f '%M' "$@" 2>&1 >/dev/null | tail -n 1; }
run_kib=$(peak "$poolrun" run -q "$work/memory.toml")
memory_dir=$(ls -d "$work"/runs/memory/2*/)
report_kib=$(peak "$poolrun" report "$memory_dir")
files=$(find "$memory_dir/tasks" -type f | wc -l)
# Into a pipe, as a plan is read; then `yes`-style output of the same bytes into the same pipe:
# what writing them costs without a plan.
plan_start=$(date +%s.%N)
plan_bytes=$({ /usr/bin/time -f '%M' -o "$work/plan.kib" "$poolrun" plan --json "$work/plan.toml"; } | wc -c)
plan_seconds=$(echo "$(date +%s.%N) - $plan_start" | bc)
plan_kib=$(tail -n 1 "$work/plan.kib")
line=$("$poolrun" plan --json "$work/plan.toml" | sed -n '2{p;q}' || true)
yes_start=$(date +%s.%N)
# (`yes` ends on SIGPIPE once `head` has its bytes.)
yes "$line" | head -c "$plan_bytes" | wc -c >/dev/null || true
yes_seconds=$(echo "$(date +%s.%N) - $yes_start" | bc)

echo "== timeout precision: $TIMEOUT_TASKS tasks under a 200 ms timeout" >&2
"$poolrun" run -q "$work/timeouts.toml" || true
timeouts_dir=$(ls -d "$work"/runs/timeouts/2*/)

export SIZES MEMORY_TASKS PLAN_ITEMS RUN_KIB=$run_kib REPORT_KIB=$report_kib PLAN_KIB=$plan_kib \
    PLAN_SECONDS=$plan_seconds PLAN_BYTES=$plan_bytes YES_SECONDS=$yes_seconds FILES=$files \
    TIMEOUTS_DIR=$timeouts_dir RUNS
# The sections other scripts write (from the first marker on) are kept: they say their own date
# and commit, and the scripts below rewrite theirs.
python3 bench/report.py "$work" > "$work/BENCHMARKS.md"
if [[ -f BENCHMARKS.md ]]; then
    sed -n '/^<!-- /,$p' BENCHMARKS.md >> "$work/BENCHMARKS.md"
fi
mv "$work/BENCHMARKS.md" BENCHMARKS.md
# What containment costs, against poolrun before it; what the item sources cost; what exporting
# a report of 1,000,000 tasks costs, format by format: each its own section of BENCHMARKS.md.
for section in $SECTIONS; do
    "bench/$section.sh" >/dev/null
done
cat BENCHMARKS.md
