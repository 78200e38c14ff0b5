import { KilnError } from '../lib/errors.js';

/**
 * Stable codes for RPC failures. A remote handler's KilnError travels with its own code and comes
 * out of `call()` as a RemoteError carrying it, so callers branch on the same codes on both ends.
 */
export const RpcCodes = {
  /** The peer does not know the command (older peer, or a typo). */
  unknownCommand: 'KILN_ERR_RPC_UNKNOWN_COMMAND',
  /** The peer's protocol version cannot talk to ours, or the command is newer than the peer. */
  version: 'KILN_ERR_RPC_VERSION',
  /** Handshake failed: wrong shared secret, or a peer that is not kiln. */
  auth: 'KILN_ERR_RPC_AUTH',
  /** No answer within the call's timeout. */
  timeout: 'KILN_ERR_RPC_TIMEOUT',
  /** The caller cancelled the call. */
  cancelled: 'KILN_ERR_RPC_CANCELLED',
  /** The connection closed before the answer arrived. */
  closed: 'KILN_ERR_RPC_CLOSED',
  /** Arguments or result do not match the command's schema. */
  badArgs: 'KILN_ERR_RPC_BAD_ARGS',
  badResult: 'KILN_ERR_RPC_BAD_RESULT',
  /** The handler failed with something that is not a KilnError (its message is not forwarded). */
  internal: 'KILN_ERR_RPC_INTERNAL',
  /** A message that decodes but is not a valid RPC message. */
  protocol: 'KILN_ERR_RPC_PROTOCOL',
  /** No live connection to call over. */
  notConnected: 'KILN_ERR_RPC_NOT_CONNECTED',
} as const;

export class RpcError extends KilnError {}

/** An error the remote handler answered with; `code` is the remote code. */
export class RemoteError extends RpcError {
  constructor(code: string, message: string, details?: Record<string, unknown>) {
    super(code, message, details);
  }
}
