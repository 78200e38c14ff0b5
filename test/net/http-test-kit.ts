// Shared pieces of the boot HTTP tests: real curl processes (tracked by PID so each test can kill
// what it started), a logger that keeps lines for assertions, fd counting, files of random bytes.
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, readdir, readlink } from 'node:fs/promises';
import type { Logger } from '../../src/lib/logger.js';

export interface CurlResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

const running = new Set<ChildProcess>();

/** Start curl; `done` settles when it exits. The process is tracked until then. */
export function startCurl(args: string[]): { proc: ChildProcess; done: Promise<CurlResult> } {
  const proc = spawn('curl', ['-sS', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(proc);
  const out: Buffer[] = [];
  let err = '';
  proc.stdout!.on('data', (d: Buffer) => out.push(d));
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  const done = new Promise<CurlResult>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', (code) => {
      running.delete(proc);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
  return { proc, done };
}

export function curl(args: string[]): Promise<CurlResult> {
  return startCurl(args).done;
}

/** Kill every curl still running (by PID); for after() hooks. */
export function killCurls(): void {
  for (const p of running) {
    if (p.pid && p.exitCode === null && p.signalCode === null) process.kill(p.pid, 'SIGKILL');
  }
}

export async function fdCount(): Promise<number> {
  return (await readdir('/proc/self/fd')).length;
}

/** Poll `cond` until true or the deadline passes; returns its last value. */
export async function until(
  cond: () => boolean | Promise<boolean>,
  ms = 10_000,
  stepMs = 20,
): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}

export async function writeRandomFile(path: string, size: number): Promise<void> {
  const fh = await open(path, 'w');
  try {
    const block = 1024 * 1024;
    for (let done = 0; done < size; done += block) await fh.write(randomBytes(Math.min(block, size - done)));
  } finally {
    await fh.close();
  }
}

export function sha256(buf: Buffer): string {
  return createHash('sha256').update(buf).digest('hex');
}

export function sha256File(path: string, start?: number, end?: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path, { start, end })
      .on('data', (d) => h.update(d))
      .on('end', () => resolve(h.digest('hex')))
      .on('error', reject);
  });
}

/** Parse `curl -D -` style header blocks (the last block when there are several). */
export function parseHeaders(text: string): { status: number; headers: Record<string, string> } {
  const blocks = text.split(/\r?\n\r?\n/).filter((b) => b.startsWith('HTTP/'));
  const last = blocks[blocks.length - 1] ?? '';
  const [statusLine = '', ...lines] = last.split(/\r?\n/);
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1]), headers };
}

export interface CapturedLine {
  level: string;
  obj: Record<string, unknown>;
  msg: string | undefined;
}

/** A Logger that keeps every line, so tests can check what the server reported. */
export function captureLogger(lines: CapturedLine[] = []): Logger & { lines: CapturedLine[] } {
  const make = (level: string) =>
    ((a: object | string, b?: string) => {
      if (typeof a === 'string') lines.push({ level, obj: {}, msg: a });
      else lines.push({ level, obj: a as Record<string, unknown>, msg: b });
    }) as Logger['info'];
  const logger = {
    lines,
    trace: make('trace'),
    debug: make('debug'),
    info: make('info'),
    warn: make('warn'),
    error: make('error'),
    fatal: make('fatal'),
    child: () => logger,
  };
  return logger;
}

/** How many of this process's descriptors point at `path`. */
export async function fdsTo(path: string): Promise<number> {
  let n = 0;
  for (const fd of await readdir('/proc/self/fd')) {
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '');
    if (target === path) n++;
  }
  return n;
}

/**
 * TCP connections with local port `port` that some process still holds (any state but LISTEN and
 * TIME-WAIT): a leaked descriptor keeps its connection in CLOSE-WAIT after the peer has gone.
 */
export async function heldConnections(port: number): Promise<number> {
  const r = await new Promise<string>((resolve, reject) => {
    const p = spawn('ss', ['-Htan', 'state', 'all', `( sport = :${port} )`], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    p.on('error', reject);
    p.on('close', () => resolve(out));
  });
  return r.split('\n').filter((l) => l.trim() && !/^(LISTEN|TIME-WAIT)\s/.test(l.trim())).length;
}
