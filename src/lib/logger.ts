import { pino } from 'pino';

/**
 * The logging surface every module receives. It is pino's, narrowed: library code takes a Logger in
 * its options and never imports a global one, so tests can pass `silentLogger` or capture lines.
 */
export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  child(bindings: Record<string, unknown>): Logger;
}

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

/** Keys whose values never reach a log line, wherever they sit in the logged object. */
const REDACT = [
  'secret',
  'password',
  'token',
  'api_key',
  'apiKey',
  'authorization',
  '*.secret',
  '*.password',
  '*.token',
  '*.api_key',
  '*.authorization',
  'power_parameters.*',
];

export function createLogger(options: {
  level: LogLevel;
  name?: string;
  destination?: NodeJS.WritableStream;
}): Logger {
  const opts = {
    level: options.level,
    base: { pid: process.pid, ...(options.name ? { name: options.name } : {}) },
    redact: { paths: REDACT, censor: '[redacted]' },
  };
  return options.destination ? pino(opts, options.destination) : pino(opts);
}

function noop(): void {}

/** A logger that drops everything; for tests and tools that want quiet. */
export const silentLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  child: () => silentLogger,
};
