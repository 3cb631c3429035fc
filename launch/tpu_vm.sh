#!/usr/bin/env bash
# Train on a Cloud TPU slice from a launch spec: create it (queued resource), set up every
# worker, train with outputs in the spec's bucket, re-create and resume after preemptions.
#
#   launch/tpu_vm.sh SPEC [key=value ...] [--dry-run] [--delete-when-done]
#   (examples: configs/launch/v5e-8.yaml, v4-32.yaml, v5p-64.yaml)
#
# The other actions: scaling-jax launch tpu create|setup|status|logs|stop|delete SPEC.
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: $0 SPEC [key=value ...] [--dry-run] [--delete-when-done]" >&2
  exit 2
fi
exec scaling-jax launch tpu run "$@"
