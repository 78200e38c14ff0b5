/**
 * Errors with stable codes. Callers branch on `code`, never on `message`: messages are for people
 * and may change, codes are a contract (API error bodies, RPC named errors, logs).
 *
 * Severity is decided by whoever catches: a server loop logs malformed input at debug and drops it,
 * "not for us" at info, and its own faults at error. One bad packet never stops a loop.
 */
export class KilnError extends Error {
  readonly code: string;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: string,
    message: string,
    details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
    this.details = details;
  }
}

/** Bytes from the network that do not form a valid message. Always safe to drop. */
export class DecodeError extends KilnError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('KILN_ERR_DECODE', message, details);
  }
}

/** A configuration key is unknown or its value is not allowed. Stops start-up. */
export class ConfigError extends KilnError {
  constructor(
    readonly key: string,
    message: string,
  ) {
    super('KILN_ERR_CONFIG', `config ${key}: ${message}`, { key });
  }
}

/** Input that a person or a script sent us (API body, CLI argument) is not acceptable. */
export class ValidationError extends KilnError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('KILN_ERR_VALIDATION', message, details);
  }
}

export class NotFoundError extends KilnError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('KILN_ERR_NOT_FOUND', message, details);
  }
}

export class ConflictError extends KilnError {
  constructor(message: string, details?: Record<string, unknown>) {
    super('KILN_ERR_CONFLICT', message, details);
  }
}

/** A KilnError with the HTTP status it is (or was) answered with: the API's errors, both ends. */
export class HttpError extends KilnError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
  }
}

export function isKilnError(err: unknown, code?: string): err is KilnError {
  return err instanceof KilnError && (code === undefined || err.code === code);
}

/** A short, safe description of anything thrown, for logs and error bodies. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
