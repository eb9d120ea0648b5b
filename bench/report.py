"""Writes the main part of BENCHMARKS.md from what bench/run.sh gathered: hyperfine JSON in WORK,
the rest in the environment (see run.sh). Usage: report.py WORK"""

import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

work = sys.argv[1]
env = os.environ
sizes = [int(n) for n in env["SIZES"].split()]
memory_tasks, plan_items, runs = int(env["MEMORY_TASKS"]), int(env["PLAN_ITEMS"]), int(env["RUNS"])
run_mib, report_mib, plan_mib = (int(env[k]) / 1024 for k in ("RUN_KIB", "REPORT_KIB", "PLAN_KIB"))
plan_seconds, yes_seconds = float(env["PLAN_SECONDS"]), float(env["YES_SECONDS"])
plan_mb = int(env["PLAN_BYTES"]) / 1e6
files = int(env["FILES"])


def results(name):
    with open(os.path.join(work, name)) as f:
        return {r["command"]: r["times"] for r in json.load(f)["results"]}


def rfc3339(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


dispatch = {n: results(f"dispatch-{n}.json") for n in sizes}
startup = {k: statistics.median(v) for k, v in results("startup.json").items()}


def rate(n, name):
    return n / statistics.median(dispatch[n][name])


ratios = {n: rate(n, "poolrun") / rate(n, "baseline") for n in sizes}
beats = all(
    rate(n, "poolrun") > rate(n, k) for n in sizes for k in dispatch[n] if k not in ("baseline", "poolrun")
)
startup_ms = startup["poolrun"] * 1000
startup_off_ms = startup["poolrun, no cgroups"] * 1000

# Timeout precision: SIGTERM time minus (attempt start + timeout), from the journal.
late = []
with open(os.path.join(env["TIMEOUTS_DIR"], "journal.jsonl")) as f:
    for line in f:
        record = json.loads(line)
        if record.get("event") == "finished" and record.get("terminated_at"):
            deadline = rfc3339(record["started_at"]) + datetime.timedelta(milliseconds=200)
            late.append((rfc3339(record["terminated_at"]) - deadline).total_seconds() * 1000)
late.sort()
p99 = late[min(len(late) - 1, int(len(late) * 0.99))] if late else float("nan")


def run(*command):
    return subprocess.run(command, capture_output=True, text=True).stdout.strip()


cpu = run("sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
commit = run("git", "rev-parse", "--short", "HEAD")
dirty = " (with uncommitted changes)" if run("git", "status", "--porcelain", "--untracked-files=no") else ""
today = datetime.date.today().isoformat()


def ok(met):
    return "met" if met else "**missed**"


dispatch_rows = "\n".join(
    f"| dispatch, {n:,} tasks | >= 90% of the raw spawn baseline's rate | "
    f"{ratios[n]:.0%} ({rate(n, 'poolrun'):,.0f} vs {rate(n, 'baseline'):,.0f} tasks/s) | {ok(ratios[n] >= 0.9)} |"
    for n in sizes
)
print(f"""# Benchmarks

Measured {today} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, at commit
{commit}{dirty}, by `bench/run.sh` (one run, all figures from it; hyperfine, {runs} timed runs
a command, medians, the spread as min-max). Rerun with `bench/run.sh`; `SMOKE=1 bench/run.sh`
checks the script in a minute.

## Targets

| target | goal | measured | |
| --- | --- | --- | --- |
{dispatch_rows}
| dispatch | faster than xargs, rust-parallel, GNU parallel | see below | {ok(beats)} |
| memory, run | peak RSS <= 16 MiB for {memory_tasks:,} tasks with their report | {run_mib:.1f} MiB | {ok(run_mib <= 16)} |
| memory, report | `poolrun report` of that run in bounded memory | {report_mib:.1f} MiB | {ok(report_mib <= 16)} |
| memory, plan | peak RSS <= 16 MiB for `plan --json` of {plan_items:,} items | {plan_mib:.1f} MiB | {ok(plan_mib <= 16)} |
| plan speed | `plan --json` at the speed of writing its output | {plan_mb / plan_seconds:,.0f} MB/s against {plan_mb / yes_seconds:,.0f} MB/s for `yes` ({yes_seconds / plan_seconds:.0%}) | {ok(yes_seconds / plan_seconds >= 0.9)} |
| files | no empty output files for {memory_tasks:,} quiet tasks | {files} files | {ok(files == 0)} |
| timeout precision | SIGTERM within 50 ms of the deadline, p99 | {p99:.1f} ms over {len(late)} tasks | {ok(p99 <= 50)} |
| startup | a one-task run in <= 5 ms | {startup_ms:.2f} ms ({startup_off_ms:.2f} ms without cgroups) | {ok(startup_ms <= 5)} |
""")
for n in sizes:
    print(f"""## Dispatch: {n:,} x `/bin/true`, 2 at a time

Every runner runs the same {n:,} commands two at a time. poolrun runs them as a job with a
timeout set, every output captured, its journal and report written, and its containment on.

| runner | median | spread | tasks/s | vs baseline |
| --- | --- | --- | --- | --- |""")
    for name, times in dispatch[n].items():
        median = statistics.median(times)
        print(f"| {name} | {median:.3f} s | {min(times):.3f}-{max(times):.3f} s | {n / median:,.0f} | "
              f"{rate(n, name) / rate(n, 'baseline'):.0%} |")
    print()
print(f"""## Memory and the plan

- A run of {memory_tasks:,} `/bin/true` tasks, 2 at a time, with its {memory_tasks:,}-row report:
  peak RSS {run_mib:.1f} MiB (GNU time's %M). `poolrun report` of it: {report_mib:.1f} MiB. Every
  export format of a 1,000,000-task report: the exports section below.
- `poolrun plan --json` of {plan_items:,} items (`command = ["/bin/true", "{{start}}"]`) into a
  pipe (`| wc -c`): {plan_mb:,.0f} MB in {plan_seconds:.0f} s, {plan_mb / plan_seconds:,.0f} MB/s,
  peak RSS {plan_mib:.1f} MiB. The same bytes of `yes`-style output (`yes LINE | head -c BYTES
  | wc -c`, LINE a line of the plan) took {yes_seconds:.0f} s, {plan_mb / yes_seconds:,.0f} MB/s.

## Startup

| command | median |
| --- | --- |""")
for name, seconds in startup.items():
    print(f"| {name} | {seconds * 1000:.2f} ms |")
print()

# The profile notes are written by hand (bench/profile.md): where the time goes and what changed.
with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "profile.md")) as f:
    print(f.read())
