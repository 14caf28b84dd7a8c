// The clsact qdiscs classic tc filters hang on. bpf_tc_hook_create makes
// one where the interface has none; libbpf never removes it, so every
// attachTc() on a kernel without tcx used to leave one behind. Here: a
// qdisc this process made is removed when the last filter on it goes (ours
// or anyone's: it is only removed when no filter at all is left on either
// side), and one that was there before (the user's, another tool's) is
// kept, unless the caller asked for it to go (`destroyHook: true`).
import { addon } from './addon.js';

// Interfaces (ifindex, in this process's network namespace) whose clsact
// qdisc this process made and has not removed.
const created = new Set<number>();

/** Notes a classic tc attachment; `hookCreated`: bpf_tc_hook_create made the qdisc. */
export function tcAttached(ifindex: number, hookCreated: boolean): void {
  if (hookCreated) created.add(ifindex);
}

/**
 * After a classic tc filter on `ifindex` was detached: removes the clsact
 * qdisc where it is ours (or `destroyHook` is true) and nothing is left on
 * it. `detached`: whether the filter was still there to detach; when it was
 * not, the interface or its qdisc went away meanwhile, and the ifindex may
 * be another interface's by now, so nothing is touched. Never throws (it
 * runs in detach(), and at exit).
 */
export function tcDetached(ifindex: number, detached: boolean, destroyHook: boolean | undefined): void {
  if (!detached) {
    created.delete(ifindex);
    return;
  }
  if (destroyHook === false || (!created.has(ifindex) && destroyHook !== true)) return;
  try {
    if (addon.tcFilterCount(ifindex) > 0) return; // still in use: its last filter's detach removes it
    addon.tcHookDestroy(ifindex);
  } catch {
    // No qdisc any more (removed by someone else, or the interface is gone).
  }
  created.delete(ifindex);
}
