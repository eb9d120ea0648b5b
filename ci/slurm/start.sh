#!/usr/bin/env bash
# Starts a private single-node Slurm cluster for the Slurm tests: its own munge key and socket,
# its own slurm.conf, state, spool, pid and log files, all under one folder (default
# /tmp/poolrun-slurm). Installs Debian's slurmctld, slurmd, slurm-client and munge when missing.
# Prints the SLURM_CONF to export; `ci/slurm/stop.sh` stops it.
#
#   eval "$(ci/slurm/start.sh)"      # exports SLURM_CONF for the client commands
#   MAX_ARRAY_SIZE=20 ci/slurm/start.sh  # a low MaxArraySize (default 1001)
#
# Runs as root (the daemons are plain processes, no systemd). The cluster is ready when the node
# is idle, a fraction of a second after the daemons start.
set -euo pipefail
dir=${POOLRUN_SLURM_DIR:-/tmp/poolrun-slurm}
max_array_size=${MAX_ARRAY_SIZE:-1001}

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >&2
fi

"$(dirname "$0")/stop.sh" >&2 || true
rm -rf "$dir"
mkdir -p "$dir"/{state,spool,log,run}
chmod 755 "$dir"
host=$(hostname -s)

# munge: a key and a socket of our own.
mungekey -c -k "$dir/munge.key" >&2
chmod 600 "$dir/munge.key"
munged --socket="$dir/run/munge.socket" --key-file="$dir/munge.key" \
    --pid-file="$dir/run/munged.pid" --log-file="$dir/log/munged.log" \
    --seed-file="$dir/run/munged.seed" --force >&2

cat > "$dir/slurm.conf" <<CONF
ClusterName=poolrun-test
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$dir/run/munge.socket
CryptoType=crypto/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/run/slurmctld.pid
SlurmdPidFile=$dir/run/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
KillWait=2
MinJobAge=3600
MaxArraySize=$max_array_size
MaxJobCount=100000
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=32 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF" >&2
slurmd -f "$SLURM_CONF" >&2
for _ in $(seq 1 200); do
    if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 0.1
done
echo "the Slurm node did not become idle; see $dir/log" >&2
exit 1
