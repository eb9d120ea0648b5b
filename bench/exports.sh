#!/usr/bin/env bash
# What exporting a huge report costs (issue 10's target: bounded memory), written as the
# exports section of BENCHMARKS.md (between its markers, replacing an earlier one).
#
# A run of 1,000,000 tasks (one attempt each; every 40th failed with a stderr tail) is made from
# a real run of jobs/flaky.toml: its report rows and journal records repeated with new ids, keys
# and times, so the files are what poolrun itself writes. Then `poolrun report --format F` for
# each format, with GNU time's %M (peak RSS) and the wall time.
#
#   bench/exports.sh             1,000,000 tasks
#   SMOKE=1 bench/exports.sh     10,000 tasks: checks the script works
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
if [[ -n "${SMOKE:-}" ]]; then TASKS=10000; else TASKS=${TASKS:-1000000}; fi
command -v /usr/bin/time >/dev/null || {
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
}
work=$root/target/bench-exports
rm -rf "$work" && mkdir -p "$work"
cargo build --release --quiet
poolrun=$root/target/release/poolrun
"$poolrun" run -q jobs/flaky.toml --run-dir "$work/sample" || true

python3 - "$work/sample" "$work/big" "$TASKS" <<'PY'
import copy, json, os, sys
sample, big, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(big + "/tasks")
report = json.load(open(sample + "/report.json"))
records = [json.loads(l) for l in open(sample + "/journal.jsonl")]
ok = next(t for t in report["tasks"] if t["status"] == "succeeded")
bad = next(t for t in report["tasks"] if t["status"] == "failed")
width = len(str(n - 1))
t0 = 1_795_000_000.0
def at(seconds):
    whole = int(seconds)
    import time
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + ".%03dZ" % int((seconds - whole) * 1000)
with open(big + "/report.json", "w") as out, open(big + "/journal.jsonl", "w") as journal:
    started = dict(records[0], at=at(t0), tasks=n, processes=4)
    journal.write(json.dumps(started) + "\n")
    out.write('{\n  "schema": %s,\n  "job": %s,\n  "tasks": [' % (json.dumps(report["schema"]), json.dumps(report["job"])))
    for i in range(n):
        row = copy.copy(bad if i % 40 == 7 else ok)
        begin = t0 + i / 4 * 0.01
        row.update(id=i, key="%016x" % i, content_key="%016x" % (i * 7), start=i, last=i, end=i + 1,
                   started_at=at(begin), finished_at=at(begin + 0.01), duration_ms=10,
                   stdout="tasks/%0*d.out" % (width, i), command=["/bin/sh", "-c", "work %d" % i])
        if row["stderr"]:
            row["stderr"] = "tasks/%0*d.err" % (width, i)
        out.write(("\n    " if i == 0 else ",\n    ") + json.dumps(row, separators=(",", ":")))
        journal.write(json.dumps({"event": "started", "at": row["started_at"], "task": i, "key": row["key"], "attempt": 1, "pid": 1000 + i}) + "\n")
        journal.write(json.dumps({"event": "finished", "at": row["finished_at"], "task": i, "key": row["key"], "attempt": 1,
                                  "status": row["status"], "exit_code": row["exit_code"], "signal": None,
                                  "started_at": row["started_at"], "duration_ms": 10, "has_output": True,
                                  "stdout_bytes": row["stdout_bytes"], "stderr_bytes": row["stderr_bytes"], "leaked": 0,
                                  "error": row["error"], "retry": False}) + "\n")
    summary = dict(report["summary"], tasks=n, succeeded=n - len(range(7, n, 40)), failed=len(range(7, n, 40)), timed_out=0, wall_seconds=n / 400)
    run = dict(report["run"], dir=big, started_at=at(t0), finished_at=at(t0 + n / 400), processes=4)
    out.write('\n  ],\n  "run": %s,\n  "summary": %s\n}\n' % (json.dumps(run), json.dumps(summary)))
    journal.write(json.dumps({"event": "run_finished", "at": run["finished_at"], "status": "completed"}) + "\n")
PY

report_mib=$(( $(stat -c %s "$work/big/report.json") / 1048576 ))
results=()
for format in table json jsonl csv junit joblog html; do
    start=$(date +%s.%N)
    kib=$( { /usr/bin/time -f %M "$poolrun" report "$work/big" --format "$format" > "$work/out.$format"; } 2>&1 | tail -1) || true
    seconds=$(echo "$(date +%s.%N) - $start" | bc)
    mib=$(( $(stat -c %s "$work/out.$format") / 1048576 ))
    results+=("$format $kib $seconds $mib")
    echo "$format: peak $((kib / 1024)) MiB, $seconds s, output $mib MiB" >&2
done

section=$(python3 - "$TASKS" "$report_mib" "${results[@]}" <<'PY'
import subprocess, sys
tasks, report_mib = int(sys.argv[1]), int(sys.argv[2])
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
cpus = len([l for l in open("/proc/cpuinfo") if l.startswith("processor")])
out = [
    "<!-- exports:begin -->",
    "## Report exports",
    "",
    f"`bench/exports.sh` at {commit}, on {cpu} ({cpus} CPUs): `poolrun report --format F` of a run of "
    f"{tasks:,} tasks (report.json {report_mib} MiB, a journal of {2 * tasks + 2:,} records). Rows are "
    "streamed one at a time, so the peak does not grow with the run.",
    "",
    "| format | peak RSS | time | output |",
    "| --- | --- | --- | --- |",
]
for result in sys.argv[3:]:
    fmt, kib, seconds, mib = result.split()
    out.append(f"| {fmt} | {int(kib) / 1024:.1f} MiB | {float(seconds):.1f} s | {mib} MiB |")
out += ["", "<!-- exports:end -->"]
print("\n".join(out))
PY
)
echo "$section"
python3 bench/section.py "$root/BENCHMARKS.md" exports "$section"
