#!/usr/bin/env bash
# What poolrun adds on Slurm (issue 11): 1,000 trivial tasks through poolrun's Slurm backend
# against a plain `sbatch --array` script doing the same (each element runs `true` and writes its
# exit code to a file; the script polls squeue until the array is gone), on the private
# single-node cluster of ci/slurm/start.sh. Runs interleaved; the Slurm section of BENCHMARKS.md.
#
#   bench/slurm.sh             1,000 tasks, 3 runs each
#   SMOKE=1 bench/slurm.sh     50 tasks, 1 run each: checks the script works
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [[ -n "${SMOKE:-}" ]]; then TASKS=50 RUNS=1; else TASKS=${TASKS:-1000} RUNS=${RUNS:-3}; fi
work=$root/target/bench-slurm
rm -rf "$work" && mkdir -p "$work"
cargo build --release --quiet
eval "$(POOLRUN_SLURM_DIR=$work/cluster ci/slurm/start.sh)"
trap 'POOLRUN_SLURM_DIR=$work/cluster ci/slurm/stop.sh' EXIT

printf 'command = "true"\n[range]\nstart = 0\nend = %d\n[pool]\nprocesses = 32\n[slurm]\n' "$TASKS" > "$work/job.toml"
cat > "$work/element.sh" <<'SH'
#!/bin/sh
true
echo $? > "$OUT/$SLURM_ARRAY_TASK_ID.exit"
SH
chmod +x "$work/element.sh"

plain() {
    local out=$work/plain-$1
    mkdir -p "$out"
    local id
    id=$(OUT=$out sbatch --parsable --array=0-$((TASKS - 1))%32 --output=/dev/null "$work/element.sh")
    while squeue -h -j "$id" 2>/dev/null | grep -q .; do sleep 0.2; done
    [[ $(find "$out" -name '*.exit' | wc -l) -eq $TASKS ]]
}
poolrun_run() {
    "$root/target/release/poolrun" run -q "$work/job.toml" --run-dir "$work/poolrun-$1"
}

results=()
for round in $(seq 1 "$RUNS"); do
    for what in poolrun plain; do
        start=$(date +%s.%N)
        if [[ $what == plain ]]; then plain "$round"; else poolrun_run "$round"; fi
        seconds=$(echo "$(date +%s.%N) - $start" | bc)
        echo "$what run $round: $seconds s" >&2
        results+=("$what $seconds")
    done
done

section=$(python3 - "$TASKS" "${results[@]}" <<'PY'
import statistics, subprocess, sys
tasks = int(sys.argv[1])
runs = {}
for r in sys.argv[2:]:
    what, s = r.split()
    runs.setdefault(what, []).append(float(s))
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cpus = len([l for l in open("/proc/cpuinfo") if l.startswith("processor")])
p, q = statistics.median(runs["poolrun"]), statistics.median(runs["plain"])
out = [
    "<!-- slurm:begin -->",
    "## Slurm",
    "",
    f"`bench/slurm.sh` at {commit}, on {cpu} ({cpus} CPUs), against the private single-node Slurm 22.05 "
    f"of `ci/slurm/start.sh` (32 advertised CPUs): {tasks:,} tasks that run `true`, 32 at a time, "
    f"{len(runs['poolrun'])} runs each, interleaved.",
    "",
    "| what | median | runs |",
    "| --- | --- | --- |",
    f"| poolrun (`[slurm]`: arrays, outcome files, journal, report) | {p:.1f} s | {', '.join(f'{x:.1f}' for x in runs['poolrun'])} |",
    f"| plain `sbatch --array` script (exit code files, squeue polling) | {q:.1f} s | {', '.join(f'{x:.1f}' for x in runs['plain'])} |",
    "",
    f"poolrun takes {p / q:.2f}x the plain script's time, {(p - q) / tasks * 1000:.0f} ms more per task. "
    "Each element runs `poolrun exec-task` (it loads the run's plan from its journal and job copy, runs the "
    "task in its own process group with the kill sequence, writes its outcome file): 10 to 40 ms of its own "
    "here, and on this machine the 32 slots the node advertises share 2 CPUs, so that cost adds up; on a "
    "cluster each element has its own CPU and the scheduler's pace of starting elements dominates.",
    "",
    "<!-- slurm:end -->",
]
print("\n".join(out))
PY
)
echo "$section"
python3 bench/section.py "$root/BENCHMARKS.md" slurm "$section"
