#!/usr/bin/env bash
# Stops the cluster ci/slurm/start.sh started: each daemon by the pid in its pid file, then waits
# until it is gone.
set -uo pipefail
dir=${POOLRUN_SLURM_DIR:-/tmp/poolrun-slurm}
for daemon in slurmd slurmctld munged; do
    pidfile=$dir/run/$daemon.pid
    [[ -f $pidfile ]] || continue
    pid=$(cat "$pidfile")
    [[ -n $pid ]] || continue
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 1 100); do
        [[ -d /proc/$pid ]] || break
        # A zombie is gone for our purposes.
        [[ $(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) == Z ]] && break
        sleep 0.05
    done
    if [[ -d /proc/$pid ]]; then kill -9 "$pid" 2>/dev/null || true; fi
done
exit 0
