#!/usr/bin/env bash
# Local dispatch of this checkout against another poolrun binary (e.g. one built before a
# change): 5,000 /bin/true tasks, 2 at a time, a timeout set, outputs, journal and report
# written, runs interleaved so the machine's drift hits both alike. Writes the "compare" section
# of BENCHMARKS.md.
#
#   bench/compare.sh OLD_BINARY "what the old binary is"     e.g. a build of the commit before
#   SMOKE=1 bench/compare.sh ...                             500 tasks, 2 rounds
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
old=$1
label=${2:-"$old"}
if [[ -n "${SMOKE:-}" ]]; then TASKS=500 RUNS=2; else TASKS=${TASKS:-5000} RUNS=${RUNS:-10}; fi
work=$root/target/bench-compare
rm -rf "$work" && mkdir -p "$work"
cargo build --release --quiet
new=$root/target/release/poolrun
printf 'command = ["/bin/true", "{item}"]\n[range]\nstart = 0\nend = %d\n[pool]\nprocesses = 2\ntimeout = "60s"\n[report]\ndir = "%s/runs/{name}/{run-id}"\n' \
    "$TASKS" "$work" > "$work/job.toml"
python3 - "$old" "$new" "$work/job.toml" "$RUNS" > "$work/times.json" <<'PY'
import json, subprocess, sys, time
old, new, job, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
times = {"old": [], "new": []}
for b in (old, new):
    subprocess.run([b, "run", "-q", job], check=True)
for r in range(runs):
    for name in (["old", "new"] if r % 2 == 0 else ["new", "old"]):
        start = time.perf_counter()
        subprocess.run([old if name == "old" else new, "run", "-q", job], check=True)
        times[name].append(time.perf_counter() - start)
json.dump(times, sys.stdout)
PY
section=$(python3 - "$work/times.json" "$TASKS" "$label" <<'PY'
import json, statistics, subprocess, sys
t = json.load(open(sys.argv[1]))
tasks, label = int(sys.argv[2]), sys.argv[3]
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
o, n = statistics.median(t["old"]), statistics.median(t["new"])
out = [
    "<!-- compare:begin -->",
    "## Local dispatch before and after",
    "",
    f"`bench/compare.sh` at {commit} against {label}, on {cpu}: {tasks:,} `/bin/true` tasks, 2 at a time, "
    f"timeout set, {len(t['new'])} runs each, interleaved.",
    "",
    "| binary | median | mean | min-max | rate |",
    "| --- | --- | --- | --- | --- |",
]
for name, xs in (("before", t["old"]), ("after", t["new"])):
    out.append(f"| {name} | {statistics.median(xs):.3f} s | {statistics.mean(xs):.3f} s | {min(xs):.2f}-{max(xs):.2f} s | {tasks / statistics.median(xs):,.0f} tasks/s |")
out += ["", f"After / before (medians): {n / o:.3f}.", "", "<!-- compare:end -->"]
print("\n".join(out))
PY
)
echo "$section"
python3 bench/section.py "$root/BENCHMARKS.md" compare "$section"
