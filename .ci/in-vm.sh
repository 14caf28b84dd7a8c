#!/usr/bin/env bash
# Runs inside a VM guest (../shared/vm/run-in-vm.sh): makes the modules of
# .ci/vm-modules.sh visible (LBN_VM_MODULES, a host directory the guest sees
# through its root) and loads them, then runs the command.
set -euo pipefail
if [ -n "${LBN_VM_MODULES:-}" ]; then
  mkdir -p /lib/modules
  mount --bind "$LBN_VM_MODULES" /lib/modules
  modprobe -a veth sch_ingress cls_bpf act_bpf || echo "in-vm: some modules did not load" >&2
fi
exec "$@"
