/**
 * Serves one file on a node:http response: GET and HEAD, one byte Range (206/416), ETag with
 * If-None-Match and Last-Modified with If-Modified-Since (304), If-Range, keep-alive. The body goes
 * out with sendfile(2) on plain TCP when the addon is available, and as a file stream otherwise
 * (addon missing or disabled, TLS). koa-static stays for the UI: it ignores Range.
 */
import { createReadStream } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { NotFoundError } from '../lib/errors.js';
import { nativeStatus } from '../native/index.js';
import { fileEtag, ifRangeAllows, isNotModified, lastModified } from './http-conditional.js';
import { planRange } from './http-range.js';
import { type SendfileOptions, sendfileToSocket, socketFd } from './http-sendfile.js';

export interface ServeFileOptions extends SendfileOptions {
  contentType?: string;
  /** false forces the stream path even when the addon is available (tests, benchmarks). */
  sendfile?: boolean;
  /** Stream path read size. 1 MiB reached nginx's throughput here where the default 64 KiB reached 66%. */
  highWaterMark?: number;
}

export interface ServeFileResult {
  status: number;
  /** Body bytes handed to the kernel. */
  bytes: number;
  via: 'sendfile' | 'stream' | 'none';
  /** Set when the body was cut short (client abort, socket error, stall); the socket was destroyed. */
  error?: NodeJS.ErrnoException;
}

const EMPTY = Buffer.alloc(0);
export const DEFAULT_HIGH_WATER_MARK = 1024 * 1024;

async function openRegular(path: string): Promise<{ fh: FileHandle; size: number; mtimeMs: number }> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ELOOP') {
      throw new NotFoundError(`no such file: ${path}`, { path });
    }
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new NotFoundError(`not a regular file: ${path}`, { path });
    return { fh, size: st.size, mtimeMs: st.mtimeMs };
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Resolves once everything Node queued on the socket (our headers) has reached the kernel. */
function drained(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) resolve(false);
    // Writes complete in order, so an empty write's callback marks the end of the earlier ones.
    else socket.write(EMPTY, (err) => resolve(!err && !socket.destroyed));
  });
}

/** The response's socket; a pipelined request's response gets it only when the earlier ones finish. */
function responseSocket(res: ServerResponse): Promise<Socket | null> {
  if (res.socket) return Promise.resolve(res.socket);
  return new Promise((resolve) => {
    const onSocket = (s: Socket) => {
      res.off('close', onClose);
      resolve(s);
    };
    const onClose = () => {
      res.off('socket', onSocket);
      resolve(null);
    };
    res.once('socket', onSocket);
    res.once('close', onClose);
  });
}

/**
 * Answer `req` with the file at `path` (already confined to its root by the caller). Throws
 * NotFoundError before writing anything when the file is missing or not a regular file, so the
 * caller can answer 404; other open/stat failures are thrown likewise (500). Once headers are out,
 * failures are reported in the result and the socket is destroyed.
 */
export async function serveFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  opts: ServeFileOptions = {},
): Promise<ServeFileResult> {
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Length': 0 });
    res.end();
    return { status: 405, bytes: 0, via: 'none' };
  }
  const { fh, size, mtimeMs } = await openRegular(path);
  try {
    const etag = fileEtag(size, mtimeMs);
    const headers: Record<string, string | number> = {
      ETag: etag,
      'Last-Modified': lastModified(mtimeMs),
      'Accept-Ranges': 'bytes',
    };
    if (isNotModified(req.headers, etag, mtimeMs)) {
      res.writeHead(304, headers);
      res.end();
      return { status: 304, bytes: 0, via: 'none' };
    }
    const ifRange = req.headers['if-range'];
    const rangeHeader = ifRangeAllows(typeof ifRange === 'string' ? ifRange : undefined, etag, mtimeMs)
      ? req.headers.range
      : undefined;
    const plan = planRange(rangeHeader, size);
    if (plan.kind === 'unsatisfiable') {
      headers['Content-Range'] = `bytes */${size}`;
      headers['Content-Length'] = 0;
      res.writeHead(416, headers);
      res.end();
      return { status: 416, bytes: 0, via: 'none' };
    }
    const start = plan.kind === 'partial' ? plan.start : 0;
    const end = plan.kind === 'partial' ? plan.end : size - 1;
    const length = end - start + 1;
    const status = plan.kind === 'partial' ? 206 : 200;
    headers['Content-Type'] = opts.contentType ?? 'application/octet-stream';
    headers['Content-Length'] = length;
    if (plan.kind === 'partial') headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    res.writeHead(status, headers);
    if (method === 'HEAD' || length === 0) {
      res.end();
      return { status, bytes: 0, via: 'none' };
    }

    const socket = await responseSocket(res);
    const useSendfile =
      opts.sendfile !== false && socket !== null && socketFd(socket) !== null && nativeStatus().available;
    if (useSendfile && socket) {
      res.flushHeaders();
      if (!(await drained(socket))) {
        return { status, bytes: 0, via: 'sendfile', error: prematureClose() };
      }
      const r = await sendfileToSocket(socket, fh.fd, start, length, opts);
      if (r.error) {
        socket.destroy();
        return { status, bytes: r.bytes, via: 'sendfile', error: r.error };
      }
      // Node counted no body bytes (sendfile wrote them) but, with strictContentLength off (the
      // default), ends the response without complaint and the connection stays alive.
      res.end();
      return { status, bytes: r.bytes, via: 'sendfile' };
    }

    const stream = createReadStream('', {
      fd: fh,
      start,
      end,
      autoClose: false,
      highWaterMark: opts.highWaterMark ?? DEFAULT_HIGH_WATER_MARK,
    });
    let bytes = 0;
    stream.on('data', (chunk: Buffer | string) => {
      bytes += chunk.length;
    });
    try {
      await pipeline(stream, res);
      return { status, bytes, via: 'stream' };
    } catch (err) {
      res.destroy();
      return { status, bytes, via: 'stream', error: err as NodeJS.ErrnoException };
    }
  } finally {
    await fh.close();
  }
}

function prematureClose(): NodeJS.ErrnoException {
  const err: NodeJS.ErrnoException = new Error('client closed the connection before the body was sent');
  err.code = 'ERR_STREAM_PREMATURE_CLOSE';
  return err;
}
