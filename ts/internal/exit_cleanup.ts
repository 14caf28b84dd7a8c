// Attachments that the kernel does not undo when the process is gone: XDP
// programs attached through netlink and classic tc filters stay on their
// interface after the last fd closes (kernel links do not). A natural exit
// releases them through the links' finalizers; this releases them on
// process.exit(), an uncaught exception (both emit 'exit') and SIGTERM,
// SIGINT or SIGHUP. SIGKILL leaves them in place: use links (the default
// for XDP and tc where the kernel has tcx) for attachments that must never
// outlive the process, and pins for the ones that should.
const live = new Set<{ detach(): void }>();
const SIGNALS = ['SIGTERM', 'SIGINT', 'SIGHUP'] as const;
let installed = false;

function releaseAll(): void {
  for (const a of [...live]) {
    try {
      a.detach();
    } catch {
      // the process is going: release what can be released
    }
  }
  live.clear();
}

// A signal the application does not handle itself would kill the process
// (its default action): release, then die of that signal as before. An
// application with its own listener decides when to go; its exit() or the
// natural exit releases them.
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  releaseAll();
  uninstall();
  process.kill(process.pid, signal);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', releaseAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

function uninstall(): void {
  if (!installed) return;
  installed = false;
  process.removeListener('exit', releaseAll);
  for (const s of SIGNALS) process.removeListener(s, onSignal);
}

/** Releases `a` when the process exits or is signalled; the returned function forgets it (after detach()). */
export function releaseOnExit(a: { detach(): void }): () => void {
  live.add(a);
  install();
  return () => {
    live.delete(a);
    if (live.size === 0) uninstall();
  };
}
