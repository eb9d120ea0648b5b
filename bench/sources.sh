#!/usr/bin/env bash
# What the item sources cost (issue 9's targets), written as the sources section of
# BENCHMARKS.md (between its markers, replacing an earlier one):
#
# - peak RSS of `poolrun plan --json` and `poolrun validate` of a [lines] job of 1,000,000 lines
#   (target: under 64 MiB), measured with GNU time's %M;
# - dispatch of 5,000 /bin/true tasks, 2 at a time, from [values] against the same from [range]
#   (target: within 5 %), hyperfine means and medians.
#
#   bench/sources.sh             10 runs of each dispatch
#   SMOKE=1 bench/sources.sh     10,000 lines, 500 tasks, 2 runs: checks the script works
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [[ -n "${SMOKE:-}" ]]; then LINES=10000 TASKS=500 RUNS=2; else LINES=1000000 TASKS=5000 RUNS=${RUNS:-10}; fi
for tool in hyperfine /usr/bin/time; do
    command -v "$tool" >/dev/null || {
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine time >/dev/null
    }
done
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
hyperfine -N -w 1 -r "$RUNS" --export-json "$work/dispatch.json" \
    -n range "$poolrun run -q $work/range.toml" \
    -n values "$poolrun run -q $work/values.toml" >/dev/null

section=$(python3 - "$work/dispatch.json" "$plan_kib" "$validate_kib" "$LINES" "$TASKS" <<'PY'
import json, statistics, subprocess, sys
data = json.load(open(sys.argv[1]))["results"]
plan_kib, validate_kib, lines, tasks = (int(a) for a in sys.argv[2:6])
by = {r["command"]: r for r in data}
r, v = by["range"], by["values"]
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
    f"Dispatch of {tasks:,} `/bin/true` tasks, 2 at a time, timeout set ({len(r['times'])} runs each):",
    "",
    "| source | mean | median | min-max | vs [range] (median) |",
    "| --- | --- | --- | --- | --- |",
]
for name, x in (("[range]", r), ("[values]", v)):
    ratio = x["median"] / r["median"] - 1
    out.append(f"| {name} | {x['mean']:.3f} s | {x['median']:.3f} s | {x['min']:.2f}-{x['max']:.2f} s | {ratio:+.1%} |")
out += ["", "<!-- sources:end -->"]
print("\n".join(out))
PY
)
echo "$section"
python3 - "$root/BENCHMARKS.md" "$section" <<'PY'
import re, sys
path, section = sys.argv[1], sys.argv[2]
text = open(path).read()
if "<!-- sources:begin -->" in text:
    text = re.sub(r"<!-- sources:begin -->.*<!-- sources:end -->", lambda _: section, text, flags=re.S)
else:
    text = text.rstrip("\n") + "\n\n" + section + "\n"
open(path, "w").write(text)
PY
