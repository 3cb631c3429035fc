#!/usr/bin/env bash
# Train on every worker of a multi-host TPU VM: one `scaling-jax train` process per host;
# jax.distributed.initialize() finds the other hosts from the TPU environment.
#
#   launch/tpu_vm.sh TPU_NAME ZONE CONFIG OUT [key=value ...]
#
# OUT must be visible to every host at the same path (e.g. a Filestore/NFS or gcsfuse
# mount): orbax writes one checkpoint from all hosts. Re-running after a preemption
# resumes from OUT's latest checkpoint.
set -euo pipefail
if [ $# -lt 4 ]; then
  echo "usage: $0 TPU_NAME ZONE CONFIG OUT [key=value ...]" >&2
  exit 2
fi
TPU=$1 ZONE=$2 CONFIG=$3 OUT=$4
shift 4
REPO_DIR=${REPO_DIR:-scaling_jax}  # checkout on each worker, relative to $HOME
CMD="cd $REPO_DIR && RESUME=; if ls $OUT/checkpoints 2>/dev/null | grep -q '^[0-9]'; then RESUME=--resume; fi; \
scaling-jax train $CONFIG $* --out $OUT \$RESUME"
exec gcloud compute tpus tpu-vm ssh "$TPU" --zone "$ZONE" --worker=all --command "$CMD"
