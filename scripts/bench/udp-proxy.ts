/**
 * A UDP proxy for TFTP benchmarks that adds delay and random loss (this kernel has no netem).
 *   node --import tsx scripts/bench/udp-proxy.ts --target-port N [--delay-ms 5] [--loss 0.02]
 * Prints "listening <port>" once bound. Each direction is delayed by --delay-ms (so 5 gives a
 * 10 ms round trip) and drops --loss of its packets.
 *
 * TFTP changes ports mid-way: the server answers from a new port (the transfer's TID), and the
 * client then talks to that port. So for each client the proxy keeps one socket facing the server
 * and, for each server port it hears from, one socket facing the client: the client sees a new
 * TID exactly when the server changed its own.
 */
import { createSocket, type Socket } from 'node:dgram';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    'target-port': { type: 'string' },
    'target-host': { type: 'string', default: '127.0.0.1' },
    'listen-port': { type: 'string', default: '0' },
    'delay-ms': { type: 'string', default: '0' },
    loss: { type: 'string', default: '0' },
  },
});
const targetHost = values['target-host'];
const targetPort = Number(values['target-port']);
const delayMs = Number(values['delay-ms']);
const loss = Number(values.loss);
if (!targetPort) {
  console.error('udp-proxy: --target-port is required');
  process.exit(2);
}

/** Delivers packets after a fixed delay, in order, with one timer however many are queued. */
class DelayLine {
  private readonly queue: { due: number; send: () => void }[] = [];
  private timer: NodeJS.Timeout | undefined;

  push(send: () => void): void {
    if (loss > 0 && Math.random() < loss) return;
    if (delayMs <= 0) {
      send();
      return;
    }
    this.queue.push({ due: performance.now() + delayMs, send });
    if (!this.timer) this.schedule();
  }

  private schedule(): void {
    const head = this.queue[0];
    if (!head) {
      this.timer = undefined;
      return;
    }
    this.timer = setTimeout(() => this.flush(), Math.max(0, head.due - performance.now()));
  }

  private flush(): void {
    const now = performance.now();
    while (this.queue.length > 0 && this.queue[0]!.due <= now + 0.5) this.queue.shift()!.send();
    this.schedule();
  }
}

const toServer = new DelayLine();
const toClient = new DelayLine();

interface Session {
  upstream: Socket;
  /** server port → socket the client sees as that port (a promise while it binds) */
  downstream: Map<number, Promise<Socket>>;
  lastUsed: number;
}

const sessions = new Map<string, Promise<Session>>();
const main = createSocket('udp4');

async function bound(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  return s;
}

async function openSession(clientAddr: string, clientPort: number): Promise<Session> {
  const created: Session = { upstream: await bound(), downstream: new Map(), lastUsed: Date.now() };
  const { upstream } = created;
  upstream.on('message', async (msg, rinfo) => {
    created.lastUsed = Date.now();
    if (rinfo.port === targetPort) {
      // An answer from the server's own port (an error to the request): back through the main socket.
      toClient.push(() => main.send(msg, clientPort, clientAddr));
      return;
    }
    const serverPort = rinfo.port;
    let down = created.downstream.get(serverPort);
    if (!down) {
      down = bound().then((d) => {
        d.on('message', (back) => {
          created.lastUsed = Date.now();
          toServer.push(() => upstream.send(back, serverPort, targetHost));
        });
        return d;
      });
      created.downstream.set(serverPort, down);
    }
    const via = await down;
    toClient.push(() => via.send(msg, clientPort, clientAddr));
  });
  return created;
}

main.on('message', async (msg, rinfo) => {
  const key = `${rinfo.address}:${rinfo.port}`;
  let p = sessions.get(key);
  if (!p) {
    p = openSession(rinfo.address, rinfo.port);
    sessions.set(key, p);
  }
  const s = await p;
  s.lastUsed = Date.now();
  toServer.push(() => s.upstream.send(msg, targetPort, targetHost));
});

// Sessions idle for a minute are closed, so a long benchmark does not pile up sockets.
setInterval(() => {
  const stale = Date.now() - 60_000;
  for (const [key, p] of sessions) {
    void p.then(async (s) => {
      if (s.lastUsed > stale) return;
      sessions.delete(key);
      s.upstream.close();
      for (const d of s.downstream.values()) (await d).close();
    });
  }
}, 10_000).unref();

main.bind(Number(values['listen-port']), '127.0.0.1', () => {
  console.log(`listening ${main.address().port}`);
});
process.on('SIGTERM', () => process.exit(0));
