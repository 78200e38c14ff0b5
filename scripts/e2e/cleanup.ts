/**
 * Last-resort cleanup for the e2e harness: when the test process is interrupted (SIGINT, SIGTERM,
 * a runner's timeout) its `finally` blocks do not run, so every process and namespace the harness
 * creates is also registered here and removed synchronously on exit. Normal runs unregister them.
 */
const actions = new Map<number, () => void>();
let next = 0;
let installed = false;

function runAll(): void {
  for (const fn of [...actions.values()].reverse()) {
    try {
      fn();
    } catch {
      // Best effort: keep going.
    }
  }
  actions.clear();
}

/** Registers a synchronous cleanup; returns the function that unregisters it. */
export function onAbort(fn: () => void): () => void {
  if (!installed) {
    installed = true;
    process.once('exit', runAll);
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
      process.once(sig, () => {
        runAll();
        process.exit(130);
      });
    }
  }
  const id = next++;
  actions.set(id, fn);
  return () => actions.delete(id);
}
