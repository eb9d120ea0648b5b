"""Writes BENCHMARKS.md from the results bench/run.sh gathered (hyperfine JSON, peak RSS, the
timeout run's journal). Usage: report.py WORK N MEMORY_TASKS PLAN_ITEMS RUN_KIB PLAN_KIB
PLAN_SECONDS FILES TIMEOUTS_DIR"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

work, n, memory_tasks, plan_items, run_kib, plan_kib, plan_seconds, files, timeouts_dir = sys.argv[1:]
n, memory_tasks, plan_items = int(n), int(memory_tasks), int(plan_items)
run_mib, plan_mib = int(run_kib) / 1024, int(plan_kib) / 1024


def medians(name):
    with open(os.path.join(work, name)) as f:
        results = json.load(f)["results"]
    return {r["command"]: statistics.median(r["times"]) for r in results}


def rfc3339(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


dispatch = medians("dispatch.json")
startup = medians("startup.json")
rate = {name: n / seconds for name, seconds in dispatch.items()}
ratio = rate["poolrun"] / rate["baseline"]
peers = {k: v for k, v in rate.items() if k not in ("baseline", "poolrun")}
beats_peers = all(rate["poolrun"] > v for v in peers.values())
startup_ms = (startup["poolrun"] - startup["direct"]) * 1000

# Timeout precision: SIGTERM time minus (attempt start + timeout), from the journal.
late = []
with open(os.path.join(timeouts_dir, "journal.jsonl")) as f:
    for line in f:
        record = json.loads(line)
        if record.get("event") == "finished" and record.get("terminated_at"):
            deadline = rfc3339(record["started_at"]) + datetime.timedelta(milliseconds=200)
            late.append((rfc3339(record["terminated_at"]) - deadline).total_seconds() * 1000)
late.sort()
p99 = late[min(len(late) - 1, int(len(late) * 0.99))] if late else float("nan")

cpu = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
kernel = platform.release()
cores = os.cpu_count()
today = datetime.date.today().isoformat()


def ok(met):
    return "met" if met else "**missed**"


print(f"""# Benchmarks

Measured {today} on {cores} cores ({cpu}), Linux {kernel}, by `bench/run.sh` (one run, all
figures from it). Times are hyperfine medians. Rerun with `bench/run.sh`.

## Targets

| target | goal | measured | |
| --- | --- | --- | --- |
| dispatch | >= 90% of the raw spawn baseline | {ratio:.0%} ({rate['poolrun']:,.0f} vs {rate['baseline']:,.0f} tasks/s) | {ok(ratio >= 0.9)} |
| dispatch | faster than xargs, rust-parallel, GNU parallel | {', '.join(f"{k}: {v:,.0f}/s" for k, v in peers.items())} | {ok(beats_peers)} |
| memory, run | peak RSS <= 16 MiB for {memory_tasks:,} tasks | {run_mib:.1f} MiB | {ok(run_mib <= 16)} |
| memory, plan | peak RSS <= 16 MiB for `plan --json` of {plan_items:,} items | {plan_mib:.1f} MiB (in {float(plan_seconds):.0f} s) | {ok(plan_mib <= 16)} |
| files | no empty output files for {memory_tasks:,} quiet tasks | {int(files)} files | {ok(int(files) == 0)} |
| timeout precision | SIGTERM within 50 ms of the deadline, p99 | {p99:.1f} ms over {len(late)} tasks | {ok(p99 <= 50)} |
| startup | a one-task run adds <= 5 ms | {startup_ms:.2f} ms | {ok(startup_ms <= 5)} |

## Dispatch: {n:,} x `/bin/true`, 2 at a time

Every runner runs the same {n:,} commands two at a time. poolrun runs them as a job with a
timeout set and every output captured to files, and writes its journal and report.

| runner | median | tasks/s | vs baseline |
| --- | --- | --- | --- |""")
for name, seconds in dispatch.items():
    print(f"| {name} | {seconds:.3f} s | {rate[name]:,.0f} | {rate[name] / rate['baseline']:.0%} |")
print(f"""
## Startup

| command | median |
| --- | --- |
| `/bin/true` | {startup['direct'] * 1000:.2f} ms |
| `poolrun run` of a one-task job | {startup['poolrun'] * 1000:.2f} ms |
""")

# The profile notes are written by hand (bench/profile.md): where the time goes and what changed.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile.md")) as f:
    print(f.read())
