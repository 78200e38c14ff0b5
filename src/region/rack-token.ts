import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Bearer tokens racks use on the region's HTTP endpoints (image downloads). Derived from the shared
 * secret and the rack's system id, so every region worker issues and checks the same token without
 * storing it, and a rack re-registering on several connections always gets the same one.
 * Form: `rack.<system_id>.<hex hmac>`.
 */
const LABEL = 'kiln-rack-http-token-v1';

function mac(secret: Buffer, systemId: string): string {
  return createHmac('sha256', secret).update(LABEL).update('\0').update(systemId).digest('hex');
}

export function rackHttpToken(secret: Buffer, systemId: string): string {
  return `rack.${systemId}.${mac(secret, systemId)}`;
}

/** The rack's system id when `token` is valid, else null. */
export function verifyRackHttpToken(secret: Buffer, token: string): string | null {
  const m = /^rack\.([a-z0-9-]{1,64})\.([0-9a-f]{64})$/.exec(token);
  if (!m) return null;
  const want = Buffer.from(mac(secret, m[1]!), 'hex');
  const got = Buffer.from(m[2]!, 'hex');
  return timingSafeEqual(want, got) ? m[1]! : null;
}
