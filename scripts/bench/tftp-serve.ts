/**
 * Runs kiln's TFTP server over one directory, for the benchmark (scripts/bench/tftp.sh) and for
 * trying clients by hand:
 *   node --import tsx scripts/bench/tftp-serve.ts --root DIR --port N [--host 127.0.0.1]
 *        [--timeout-ms 1000] [--retries 5] [--log-level silent]
 * Prints "listening <port>" on stdout once bound; SIGTERM closes it and prints its counters.
 */
import { parseArgs } from 'node:util';
import { createLogger, type LogLevel } from '../../src/lib/logger.js';
import { fileRootResolver } from '../../src/net/tftp-root-resolver.js';
import { startTftpServer } from '../../src/net/tftp-server.js';

const { values } = parseArgs({
  options: {
    root: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '0' },
    'timeout-ms': { type: 'string', default: '1000' },
    retries: { type: 'string', default: '5' },
    'log-level': { type: 'string', default: 'silent' },
  },
});
if (!values.root) {
  console.error('tftp-serve: --root DIR is required');
  process.exit(2);
}
const server = await startTftpServer({
  host: values.host,
  port: Number(values.port),
  logger: createLogger({ level: values['log-level'] as LogLevel, destination: process.stderr }),
  resolver: fileRootResolver(values.root),
  timeoutMs: Number(values['timeout-ms']),
  retries: Number(values.retries),
});
console.log(`listening ${server.address().port}`);
const stop = async () => {
  await server.close();
  console.error(JSON.stringify(server.stats()));
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
