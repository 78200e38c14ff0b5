import type { Logger } from '../lib/logger.js';
import type { Command, ParsedArgsOf, ResultInputOf } from './command.js';

/** What a handler learns about the call besides its arguments. */
export interface CallContext {
  /** Aborted when the caller cancels or the connection closes. */
  signal: AbortSignal;
  /** Who called: set by the server that owns the channel (e.g. the rack's system id). */
  peer: Record<string, unknown>;
  logger: Logger;
}

export type Handler<C extends Command> = (
  args: ParsedArgsOf<C>,
  ctx: CallContext,
) => ResultInputOf<C> | Promise<ResultInputOf<C>>;

export interface RegisteredHandler {
  command: Command;
  handler: (args: unknown, ctx: CallContext) => unknown;
}

/**
 * The commands one end serves. Region modules add their handlers to the worker's registry
 * (`handlers.register(GetBootConfig, fn)`), the rack adds its own to the region client's.
 */
export class HandlerRegistry {
  private readonly table = new Map<string, RegisteredHandler>();

  constructor(readonly side: 'region' | 'rack') {}

  register<C extends Command>(command: C, handler: Handler<C>): this {
    if (command.servedBy !== this.side && command.servedBy !== 'both') {
      throw new Error(
        `RPC command ${command.name} is served by the ${command.servedBy}, not the ${this.side}`,
      );
    }
    this.table.set(command.name, {
      command,
      handler: handler as (args: unknown, ctx: CallContext) => unknown,
    });
    return this;
  }

  /** Replace nothing silently: for tests that want to know. */
  has(name: string): boolean {
    return this.table.has(name);
  }

  get(name: string): RegisteredHandler | undefined {
    return this.table.get(name);
  }

  names(): string[] {
    return [...this.table.keys()].sort();
  }
}
