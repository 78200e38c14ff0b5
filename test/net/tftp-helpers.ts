/**
 * Shared pieces of the TFTP server tests: a served root with known files, a server with a log
 * that can be read back, child processes with deadlines, and a raw UDP client for driving the
 * protocol packet by packet.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/lib/logger.js';
import type { BootResolver } from '../../src/net/boot-source.js';
import { fileRootResolver } from '../../src/net/tftp-root-resolver.js';
import { startTftpServer, type TftpServer, type TftpServerOptions } from '../../src/net/tftp-server.js';
import { decodePacket, encodePacket, Opcode, type TftpPacket } from '../../src/protocols/tftp/packet.js';

export interface Root {
  top: string;
  root: string;
  files: Record<string, Buffer>;
  cleanup(): void;
}

/** A root with binary files of awkward sizes, a text file, a secret outside and a symlink to it. */
export function makeRoot(extra: Record<string, Buffer> = {}): Root {
  const top = mkdtempSync(join(tmpdir(), 'kiln-tftp-'));
  const root = join(top, 'root');
  mkdirSync(join(root, 'pxelinux.cfg'), { recursive: true });
  const files: Record<string, Buffer> = {
    'undionly.kpxe': randomBytes(100_000),
    'exact.bin': randomBytes(1468 * 8),
    'empty.bin': Buffer.alloc(0),
    'big.bin': randomBytes(3_000_000),
    'pxelinux.cfg/default': Buffer.from('DEFAULT linux\nLABEL linux\n  KERNEL vmlinuz\r\n  APPEND ro\n'),
    ...extra,
  };
  for (const [name, body] of Object.entries(files)) writeFileSync(join(root, name), body);
  writeFileSync(join(top, 'secret'), 'not for clients');
  symlinkSync(join(top, 'secret'), join(root, 'escape'));
  return { top, root, files, cleanup: () => rmSync(top, { recursive: true, force: true }) };
}

export const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
export const sha256File = (path: string) => sha256(readFileSync(path));

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Served {
  server: TftpServer;
  port: number;
  logs: LogLine[];
}

export async function serve(
  resolverOrRoot: BootResolver | string,
  options: Partial<TftpServerOptions> = {},
): Promise<Served> {
  const logs: LogLine[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line) as LogLine);
      cb();
    },
  });
  const server = await startTftpServer({
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ level: 'debug', destination: sink }),
    resolver: typeof resolverOrRoot === 'string' ? fileRootResolver(resolverOrRoot) : resolverOrRoot,
    timeoutMs: 1000,
    retries: 5,
    ...options,
  });
  return { server, port: server.address().port, logs };
}

/** pino levels */
export const LEVEL = { debug: 20, info: 30, warn: 40, error: 50 } as const;

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command to its end, killing it (by PID) if it outlives the deadline. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => {
      if (child.pid) process.kill(child.pid, 'SIGKILL');
      reject(
        new Error(`${cmd} ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 30_000} ms\n${stderr}`),
      );
    }, opts.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Poll `cond` until it holds or the deadline passes. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A TFTP client made of one UDP socket, for tests that must see and shape every packet. It
 * remembers the port the server answered from (the transfer's TID) after the first reply.
 */
export class RawClient {
  readonly socket: Socket;
  private queue: { packet: TftpPacket; port: number }[] = [];
  private waiter: (() => void) | undefined;
  /** The transfer's port, once the server answered. */
  tid: number | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('message', (msg, rinfo) => {
      this.queue.push({ packet: decodePacket(msg), port: rinfo.port });
      this.waiter?.();
    });
  }

  static async open(): Promise<RawClient> {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    return new RawClient(s);
  }

  sendTo(port: number, packet: TftpPacket | Buffer): void {
    this.socket.send(Buffer.isBuffer(packet) ? packet : encodePacket(packet), port, '127.0.0.1');
  }

  /** Send to the transfer's port. */
  send(packet: TftpPacket): void {
    if (this.tid === undefined) throw new Error('no transfer yet');
    this.sendTo(this.tid, packet);
  }

  ack(block: number): void {
    this.send({ op: Opcode.ACK, block });
  }

  async next(timeoutMs = 3000): Promise<TftpPacket> {
    const end = Date.now() + timeoutMs;
    while (this.queue.length === 0) {
      const left = end - Date.now();
      if (left <= 0) throw new Error('no packet from the server in time');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiter = () => {
          clearTimeout(t);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    const { packet, port } = this.queue.shift()!;
    this.tid ??= port;
    return packet;
  }

  /** Packets already received and not yet read. */
  get pending(): number {
    return this.queue.length;
  }

  close(): void {
    this.socket.close();
  }
}

export function rrq(
  filename: string,
  options: Record<string, string | number> = {},
  mode = 'octet',
): TftpPacket {
  return {
    op: Opcode.RRQ,
    filename,
    mode,
    options: Object.entries(options).map(([name, value]) => ({ name, value: String(value) })),
  };
}
