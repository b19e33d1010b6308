#!/usr/bin/env bash
# Stop the cluster of .ci/slurm_up.sh: cancel its jobs, then end slurmd, slurmctld and munged
# by the PIDs it recorded (no process is found by name), and wait until they are gone.
set -uo pipefail

DIR=${SPECVIT_SLURM_DIR:-/tmp/specvit-slurm}
[ -f "$DIR/pids" ] || { echo "slurm_down.sh: no $DIR/pids; nothing to stop"; exit 0; }

SLURM_CONF=$DIR/slurm.conf timeout 10 scancel --full --user=root 2>/dev/null || true

# Reverse order of start: slurmd, slurmctld, munged (the other two need munge to the end).
for pid in $(tac "$DIR/pids"); do
    kill -TERM "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
        echo "slurm_down.sh: PID $pid did not stop on SIGTERM in 10 s; sending SIGKILL" >&2
        kill -KILL "$pid" 2>/dev/null || true
    fi
done
rm -f "$DIR/pids"
# the link slurm_up.sh made at Slurm's default config path, and nothing else there
if [ "$(readlink /etc/slurm/slurm.conf 2>/dev/null)" = "$DIR/slurm.conf" ]; then
    rm -f /etc/slurm/slurm.conf
fi
echo "slurm_down.sh: stopped"
