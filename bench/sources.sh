#!/usr/bin/env bash
# What the item sources cost (issue 9's targets), written as the sources section of
# BENCHMARKS.md (between its markers, replacing an earlier one):
#
# - peak RSS of `poolrun plan --json` and `poolrun validate` of a [lines] job of 1,000,000 lines
#   (target: under 64 MiB), measured with GNU time's %M;
# - dispatch of 5,000 /bin/true tasks, 2 at a time, from [values] against the same from [range]
#   (target: within 5 %), means and medians of runs interleaved in alternating order.
#
#   bench/sources.sh             10 runs of each dispatch
#   SMOKE=1 bench/sources.sh     10,000 lines, 500 tasks, 2 runs: checks the script works
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [[ -n "${SMOKE:-}" ]]; then LINES=10000 TASKS=500 RUNS=2; else LINES=1000000 TASKS=5000 RUNS=${RUNS:-10}; fi
command -v /usr/bin/time >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
}
work=$root/target/bench-sources
rm -rf "$work" && mkdir -p "$work"
cargo build --release --quiet
poolrun=$root/target/release/poolrun

# 1,000,000 lines of about 20 bytes each, as a list of file paths would be.
seq 1 "$LINES" | sed 's|^|data/part-|; s|$|.csv|' > "$work/lines.txt"
printf 'command = ["wc", "-c", "{item}"]\n[lines]\nfile = "lines.txt"\n' > "$work/lines.toml"
rss() { /usr/bin/time -f %M "$poolrun" "$@" 2>&1 >/dev/null | tail -1; }
plan_kib=$(rss plan --json "$work/lines.toml")
validate_kib=$(rss validate "$work/lines.toml")

items=$(seq -s, 0 $((TASKS - 1)))
common="[pool]\nprocesses = 2\ntimeout = \"60s\"\n[report]\ndir = \"$work/runs/{name}/{run-id}\"\n"
printf "command = [\"/bin/true\", \"{item}\"]\n[range]\nstart = 0\nend = $TASKS\n$common" > "$work/range.toml"
printf "command = [\"/bin/true\", \"{item}\"]\n[values]\nitems = [$items]\n$common" > "$work/values.toml"
# Interleaved, not one command's runs after the other's: on a shared machine the speed drifts
# over a minute, and back-to-back batches measured that drift as a difference (+7.9 % once).
python3 - "$poolrun" "$work" "$RUNS" > "$work/dispatch.json" <<'PY'
import json, subprocess, sys, time
poolrun, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
times = {"range": [], "values": []}
for name in times:  # one warm-up each
    subprocess.run([poolrun, "run", "-q", f"{work}/{name}.toml"], check=True)
for round in range(runs):
    order = ["range", "values"] if round % 2 == 0 else ["values", "range"]
    for name in order:
        start = time.perf_counter()
        subprocess.run([poolrun, "run", "-q", f"{work}/{name}.toml"], check=True)
        times[name].append(time.perf_counter() - start)
# The CPU time of planning (rendering and hashing every task), the part of dispatch that differs
# between the sources, and a measure that the machine's noise hardly moves: median of 9.
import resource
for name in ("range", "values"):
    cpu = []
    for _ in range(9):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([poolrun, "plan", "--json", f"{work}/{name}.toml"], check=True, stdout=subprocess.DEVNULL)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    cpu.sort()
    times[f"{name}_plan_cpu"] = cpu[len(cpu) // 2]
json.dump(times, sys.stdout)
PY

section=$(python3 - "$work/dispatch.json" "$plan_kib" "$validate_kib" "$LINES" "$TASKS" <<'PY'
import json, statistics, subprocess, sys
times = json.load(open(sys.argv[1]))
plan_kib, validate_kib, lines, tasks = (int(a) for a in sys.argv[2:6])
def stats(xs):
    return {"times": xs, "mean": statistics.mean(xs), "median": statistics.median(xs), "min": min(xs), "max": max(xs)}
r, v = stats(times["range"]), stats(times["values"])
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
out = [
    "<!-- sources:begin -->",
    "## Item sources",
    "",
    f"`bench/sources.sh` at {commit}, on {cpu} ({len([l for l in open('/proc/cpuinfo') if l.startswith('processor')])} CPUs).",
    "",
    f"| what | peak RSS | target |",
    f"| --- | --- | --- |",
    f"| `poolrun plan --json` of {lines:,} lines | {plan_kib / 1024:.1f} MiB | < 64 MiB |",
    f"| `poolrun validate` of {lines:,} lines | {validate_kib / 1024:.1f} MiB | < 64 MiB |",
    "",
    f"Dispatch of {tasks:,} `/bin/true` tasks, 2 at a time, timeout set ({len(r['times'])} runs each, interleaved):",
    "",
    "| source | mean | median | min-max | vs [range] (median) |",
    "| --- | --- | --- | --- | --- |",
]
for name, x in (("[range]", r), ("[values]", v)):
    ratio = x["median"] / r["median"] - 1
    out.append(f"| {name} | {x['mean']:.3f} s | {x['median']:.3f} s | {x['min']:.2f}-{x['max']:.2f} s | {ratio:+.1%} |")
rp, vp = times["range_plan_cpu"], times["values_plan_cpu"]
out += [
    "",
    f"Planning the same {tasks:,} tasks (`poolrun plan --json`, CPU time, median of 9): [range] "
    f"{rp * 1000:.1f} ms, [values] {vp * 1000:.1f} ms, a difference of "
    f"{(vp - rp) / tasks * 1e6:.1f} µs a task ({(vp - rp) / r['median']:.2%} of the [range] run). "
    "Wall-clock differences much beyond that are the machine's noise: runs of one command spread "
    f"over {r['min']:.2f}-{r['max']:.2f} s.",
]
out += ["", "<!-- sources:end -->"]
print("\n".join(out))
PY
)
echo "$section"
python3 bench/section.py "$root/BENCHMARKS.md" sources "$section"
