#!/usr/bin/env bash
# Start a one-node Slurm cluster on this machine for the integration test (tests/cluster/test_slurm.py):
# munged, slurmctld and slurmd with private config, state, logs and sockets under $SPECVIT_SLURM_DIR
# (default /tmp/specvit-slurm), one partition `ci`, and a `gpu` GRES with two fake devices.
# Installs Debian's slurmctld, slurmd, slurm-client and munge if they are missing (needs root).
# Stop it with .ci/slurm_down.sh (by the PIDs recorded here). Clients find it with
#   . $SPECVIT_SLURM_DIR/env.sh        (exports SLURM_CONF)
set -euo pipefail

DIR=${SPECVIT_SLURM_DIR:-/tmp/specvit-slurm}
NODE=$(hostname -s)
# At least 4 CPUs declared even on a 2-core machine (slurmd accepts it with config_overrides):
# the test's small jobs then run side by side instead of waiting in turn.
CPUS=$(nproc); [ "$CPUS" -ge 4 ] || CPUS=4
# Leave 1 GiB to the system; jobs ask for far less in the CI overlay.
MEM_MB=$(( $(awk '/MemTotal/ {print int($2 / 1024)}' /proc/meminfo) - 1024 ))

if [ "$(id -u)" != 0 ]; then
    echo "slurm_up.sh: must run as root (it installs packages and creates device files)" >&2
    exit 1
fi

if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v sbatch >/dev/null \
        || ! command -v munged >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null \
        || { apt-get update -q >/dev/null && apt-get install -y -q slurmctld slurmd slurm-client munge >/dev/null; }
fi

if [ -f "$DIR/pids" ]; then
    echo "slurm_up.sh: $DIR/pids exists; stopping the old cluster first" >&2
    "$(dirname "$0")/slurm_down.sh"
fi
rm -rf "$DIR"
mkdir -p "$DIR"/{munge,state,spool,log,dev}
chmod 0700 "$DIR/munge"

# munge: a fresh key and a private socket, so no system munged is needed or touched.
dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none
chmod 0400 "$DIR/munge/munge.key"
# The daemons fork; their PID files name the processes that slurm_down.sh stops. Each is recorded
# as soon as it runs, so a failure further on still leaves slurm_down.sh able to stop it.
record_pid() {
    for _ in $(seq 50); do [ -s "$1" ] && break; sleep 0.2; done
    [ -s "$1" ] || { echo "slurm_up.sh: $1 was not written; see $DIR/log" >&2; exit 1; }
    cat "$1" >> "$DIR/pids"
}

munged --force --key-file="$DIR/munge/munge.key" --socket="$DIR/munge/munge.socket" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/log/munged.log" --seed-file="$DIR/munge/munged.seed"
record_pid "$DIR/munge/munged.pid"

# Slurm 22.05 drops a GPU GRES without device files; two character devices (major 195, as
# NVIDIA's) make --gpus=1 schedule and set CUDA_VISIBLE_DEVICES in the job. No driver is behind them.
for i in 0 1; do mknod "$DIR/dev/nvidia$i" c 195 "$i"; done

cat > "$DIR/gres.conf" <<EOF
AutoDetect=off
NodeName=$NODE Name=gpu File=$DIR/dev/nvidia[0-1]
EOF

# Without slurmdbd only squeue sees jobs finish; MinJobAge (how long squeue still shows a
# finished job) must stay >= 3x the executor's first status delay, or it falls back to sacct.
cat > "$DIR/slurm.conf" <<EOF
ClusterName=specvit-ci
SlurmctldHost=$NODE(127.0.0.1)
SlurmctldPort=${SPECVIT_SLURMCTLD_PORT:-6817}
SlurmdPort=${SPECVIT_SLURMD_PORT:-6818}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$DIR/munge/munge.socket
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
MinJobAge=300
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM_MB Gres=gpu:2 State=UNKNOWN
PartitionName=ci Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

echo "export SLURM_CONF=$DIR/slurm.conf" > "$DIR/env.sh"
export SLURM_CONF=$DIR/slurm.conf

# Inside a job, the executor plugin runs `srun` with every SLURM_* variable removed (SLURM_CONF
# too), so srun finds the config only at Slurm's default path: link it there, unless a config of
# someone else's is already in place (slurm_down.sh removes only this link).
SYSTEM_CONF=/etc/slurm/slurm.conf
# A link left by an interrupted run of this script (under another $SPECVIT_SLURM_DIR), whose
# slurmctld is no longer running, is stale: replace it. A live cluster's link is left alone.
OLD_LINK=$(readlink "$SYSTEM_CONF" 2>/dev/null || true)
if [ -L "$SYSTEM_CONF" ] && [ "$OLD_LINK" != "$DIR/slurm.conf" ]; then
    OLD_CTLD_PID=$(cat "$(dirname "$OLD_LINK")/slurmctld.pid" 2>/dev/null || true)
    if [ ! -e "$OLD_LINK" ] || { grep -q '^ClusterName=specvit-ci$' "$OLD_LINK" \
            && ! { [ -n "$OLD_CTLD_PID" ] && [ "$(ps -o comm= -p "$OLD_CTLD_PID" 2>/dev/null)" = slurmctld ]; }; }; then
        echo "slurm_up.sh: removing the stale link $SYSTEM_CONF -> $OLD_LINK (its cluster is not running)" >&2
        rm -f "$SYSTEM_CONF"
    fi
fi
if [ -e "$SYSTEM_CONF" ] || [ -L "$SYSTEM_CONF" ]; then
    if [ "$(readlink "$SYSTEM_CONF")" != "$DIR/slurm.conf" ]; then
        echo "slurm_up.sh: $SYSTEM_CONF exists and is not this cluster's; not replacing it" >&2
        exit 1
    fi
else
    mkdir -p /etc/slurm
    ln -s "$DIR/slurm.conf" "$SYSTEM_CONF"
fi

slurmctld -i
record_pid "$DIR/slurmctld.pid"
slurmd
record_pid "$DIR/slurmd.pid"

state=""
for _ in $(seq 60); do
    state=$(sinfo -h -N -n "$NODE" -o %T 2>/dev/null || true)
    [ "$state" = idle ] && break
    sleep 1
done
if [ "$state" != idle ]; then
    echo "slurm_up.sh: node $NODE is '${state:-unreachable}', not idle after 60 s; logs in $DIR/log" >&2
    exit 1
fi
echo "slurm_up.sh: node $NODE idle (partition ci, $CPUS CPUs, gpu:2); . $DIR/env.sh to use it"
