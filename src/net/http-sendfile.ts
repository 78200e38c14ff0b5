/**
 * Moves a byte range of an open file to a plain TCP socket with sendfile(2), so no byte passes
 * through JavaScript. Node knows nothing of these writes; the rules this file keeps:
 * - write through a duplicate of the socket's fd (libuv owns the original and may close it, after
 *   which the number could name another file);
 * - the caller waits until everything Node queued (the headers) has reached the kernel first;
 * - at most `turnBytes` per event-loop turn, then yield (setImmediate), so one long download never
 *   starves other requests; on EAGAIN wait for writability (the addon's one-shot uv_poll);
 * - a peer reset can surface as EPIPE or EBADF: SO_ERROR names the real cause;
 * - the duplicate is closed when the transfer ends, fails, or the socket closes, whichever is first.
 */
import type { Socket } from 'node:net';
import {
  errnoError,
  openSocketDup,
  SENDFILE_AGAIN,
  type SocketDupHandle,
  sendfile,
  socketError,
} from '../native/index.js';

export interface SendfileOptions {
  /** Bytes sent per event-loop turn before yielding. One 16 MiB sendfile held the loop ~8 ms here. */
  turnBytes?: number;
  /** A client that takes no bytes for this long is dropped (Node's idle timeout cannot see sendfile). */
  stallTimeoutMs?: number;
}

export interface SendfileResult {
  /** Bytes the kernel accepted. */
  bytes: number;
  /** Set when the transfer did not complete: the socket closed, failed, stalled, or the file shrank. */
  error?: NodeJS.ErrnoException;
}

export const DEFAULT_TURN_BYTES = 2 * 1024 * 1024;
export const DEFAULT_STALL_TIMEOUT_MS = 120_000;

/** The OS fd under a plain TCP net.Socket, or null (TLS, pipes, already closed). */
export function socketFd(socket: Socket): number | null {
  if ((socket as { encrypted?: boolean }).encrypted) return null;
  const fd = (socket as unknown as { _handle?: { fd?: unknown } | null })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 ? fd : null;
}

function premature(): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error('client closed the connection before the body was sent');
  err.code = 'ERR_STREAM_PREMATURE_CLOSE';
  return err;
}

/**
 * Send bytes [start, start+length) of `fileFd` to `socket`. Resolves (never rejects) when done or
 * failed; on failure the caller destroys the socket, since the response cannot be completed.
 */
export function sendfileToSocket(
  socket: Socket,
  fileFd: number,
  start: number,
  length: number,
  opts: SendfileOptions = {},
): Promise<SendfileResult> {
  const turnBytes = opts.turnBytes ?? DEFAULT_TURN_BYTES;
  const stallMs = opts.stallTimeoutMs ?? DEFAULT_STALL_TIMEOUT_MS;
  return new Promise((resolve) => {
    const fd = socketFd(socket);
    if (fd === null || socket.destroyed) {
      resolve({ bytes: 0, error: premature() });
      return;
    }
    let dup: SocketDupHandle;
    try {
      dup = openSocketDup(fd);
    } catch (err) {
      resolve({ bytes: 0, error: err as NodeJS.ErrnoException });
      return;
    }
    let offset = start;
    let remaining = length;
    let sent = 0;
    let done = false;
    let lastProgress = Date.now();
    let immediate: NodeJS.Immediate | undefined;

    const stall = setTimeout(function check() {
      if (done) return;
      const idle = Date.now() - lastProgress;
      if (idle >= stallMs) finish(errnoError(110 /* ETIMEDOUT */, 'sendfile', 'client stalled'));
      else stall.refresh();
    }, stallMs);
    stall.unref();

    function finish(error?: NodeJS.ErrnoException): void {
      if (done) return;
      done = true;
      clearTimeout(stall);
      if (immediate) clearImmediate(immediate);
      socket.off('close', onClose);
      dup.close();
      resolve(error ? { bytes: sent, error } : { bytes: sent });
    }

    function onClose(): void {
      finish(premature());
    }

    function pump(): void {
      immediate = undefined;
      if (done) return;
      let budget = turnBytes;
      while (remaining > 0 && budget > 0) {
        let n: number | typeof SENDFILE_AGAIN;
        try {
          n = sendfile(dup.fd, fileFd, offset, Math.min(remaining, budget));
        } catch (err) {
          finish(socketError(dup.fd) ?? (err as NodeJS.ErrnoException));
          return;
        }
        if (n === SENDFILE_AGAIN) {
          dup.waitWritable(onWritable);
          return;
        }
        if (n === 0) {
          // The file is shorter than when it was stat'ed: the headers promised bytes we cannot send.
          finish(errnoError(5 /* EIO */, 'sendfile', 'file shrank during transfer'));
          return;
        }
        offset += n;
        remaining -= n;
        sent += n;
        budget -= n;
        lastProgress = Date.now();
      }
      if (remaining === 0) finish();
      else immediate = setImmediate(pump);
    }

    function onWritable(status: number): void {
      if (done) return;
      // A failed poll (status < 0) is reported by the next sendfile with its real errno.
      void status;
      pump();
    }

    socket.on('close', onClose);
    pump();
  });
}
