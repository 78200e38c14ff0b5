/**
 * The child's side of a ChildPool (child-pool.ts): wait for the parent's start message, and know
 * when to drain. Region and rack workers each speak their own messages; what they share is when a
 * worker gives up waiting and what makes it stop.
 */

/** True in a forked worker; run by hand (no IPC channel to the parent), says so on stderr. */
export function forkedByParent(command: string, parent: string): boolean {
  if (process.send) return true;
  process.stderr.write(`kiln ${command} is started by \`kiln ${parent}\`, not by hand\n`);
  return false;
}

/**
 * The first message from the parent that `pick` accepts (returns non-null for); other messages are
 * left to other listeners. Rejects with `gone` if the parent goes away first.
 */
export function firstParentMessage<T>(pick: (m: unknown) => T | null, gone: string): Promise<T> {
  return new Promise((resolve, reject) => {
    // Gone already (while this process was loading): the 'disconnect' event will not come again.
    if (!process.connected) {
      reject(new Error(gone));
      return;
    }
    const onMessage = (m: unknown) => {
      const picked = pick(m);
      if (picked === null) return;
      process.off('message', onMessage);
      process.off('disconnect', onGone);
      resolve(picked);
    };
    const onGone = () => {
      process.off('message', onMessage);
      reject(new Error(gone));
    };
    process.on('message', onMessage);
    process.once('disconnect', onGone);
  });
}

/**
 * Calls `stop` on SIGTERM, SIGINT (a terminal's Ctrl-C reaches the workers too, not only the
 * parent) or when the parent goes away: a worker whose parent is gone has no one to answer to.
 */
export function onStopSignals(stop: () => void): void {
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.once('disconnect', stop);
}
