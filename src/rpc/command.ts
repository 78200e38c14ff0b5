import type { z } from 'zod';

/**
 * An RPC command, declared once and imported by both ends. `since` is the protocol version that
 * added it: a peer announcing an older version is not sent the command (the caller gets
 * KILN_ERR_RPC_VERSION without a round trip). A breaking change is a new command, never an edit.
 */
export interface Command<A extends z.ZodType = z.ZodType, R extends z.ZodType = z.ZodType> {
  name: string;
  /** Who serves it: 'region' commands are called by racks, 'rack' commands by region workers. */
  servedBy: 'region' | 'rack' | 'both';
  since: number;
  args: A;
  result: R;
  /** Named errors the handler may answer with (codes), documented for callers. */
  errors: readonly string[];
  summary: string;
}

export type ArgsOf<C extends Command> = z.input<C['args']>;
export type ParsedArgsOf<C extends Command> = z.output<C['args']>;
export type ResultOf<C extends Command> = z.output<C['result']>;
export type ResultInputOf<C extends Command> = z.input<C['result']>;

export function defineCommand<A extends z.ZodType, R extends z.ZodType>(c: Command<A, R>): Command<A, R> {
  return Object.freeze(c);
}
