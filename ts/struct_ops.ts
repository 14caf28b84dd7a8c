// struct_ops maps: a kernel subsystem's ops table (tcp_congestion_ops, ...)
// filled with BPF programs, registered with bpf_map__attach_struct_ops.
// Where the map was made with BPF_F_LINK (SEC(".struct_ops.link"), libbpf
// 1.2+, Linux 6.4+) the registration is a kernel link that goes with its
// fd; otherwise it is the map's element, which the kernel keeps (and the
// algorithm stays registered) after this process exits unless it is
// deleted: such registrations are undone on exit as netlink XDP is.
import { features } from './features.js';
import type { NativeMap } from './internal/addon.js';
import { fail } from './internal/errors.js';
import { releaseOnExit } from './internal/exit_cleanup.js';
import { needing } from './internal/unsupported.js';
import { BpfLink } from './link.js';
import type { BpfMap } from './map.js';

/** @internal map.attachStructOps(): registers `map` and returns the link that unregisters it. */
export function attachStructOps(map: BpfMap, native: NativeMap): BpfLink {
  if (map.type !== 'struct_ops') {
    fail(TypeError, 'ERR_INVALID_ARG_VALUE', `attachStructOps() needs a struct_ops map; map '${map.name}' is of type ${map.type}`);
  }
  const made = needing('structOps', features.structOps, () => native.attachStructOps());
  const forgetExit = made.info().kind === 'struct_ops' ? releaseOnExit(made) : undefined;
  let forgetDependent = (): void => {};
  const link = new BpfLink(made, () => {
    forgetDependent();
    forgetExit?.();
  });
  // The map's object closes its links first: unregistering needs the map's fd.
  forgetDependent = map.addDependent(link);
  return link;
}
