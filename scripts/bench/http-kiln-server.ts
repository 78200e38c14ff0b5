// Benchmark helper: kiln's boot HTTP server serving one file at /file on 127.0.0.1, as its own
// process so http-bench.ts can read its CPU time from /proc. Prints "ready <port>".
//   node --import tsx scripts/bench/http-kiln-server.ts FILE sendfile|stream
import { silentLogger } from '../../src/lib/logger.js';
import { nativeStatus } from '../../src/native/index.js';
import { BootHttpServer } from '../../src/net/boot-http-server.js';

const [file, mode] = process.argv.slice(2);
if (!file || (mode !== 'sendfile' && mode !== 'stream')) {
  console.error('usage: http-kiln-server.ts FILE sendfile|stream');
  process.exit(2);
}
if (mode === 'sendfile' && !nativeStatus().available) {
  console.error(`the native addon is not available: ${nativeStatus().reason}`);
  process.exit(1);
}
const server = new BootHttpServer({
  logger: silentLogger,
  sendfile: mode === 'sendfile',
  resolver: { resolve: async (req) => (req.path === '/file' ? { kind: 'file', path: file } : null) },
});
const { port } = await server.start({ host: '127.0.0.1', port: 0 });
process.stdout.write(`ready ${port}\n`);
process.on('SIGTERM', () => {
  server.close(0).then(() => process.exit(0));
});
