import { ValidationError } from './errors.js';

/**
 * MAC addresses travel as 6 bytes on the wire and as lower-case colon-separated text everywhere
 * else (database, API, logs). `aa-bb-…` (pxelinux, iPXE script paths) and `aabb.ccdd.eeff` (Cisco)
 * are accepted on input only.
 */
export type Mac = string & { readonly __mac: unique symbol };

const FORMS = [
  /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/,
  /^[0-9a-f]{2}(-[0-9a-f]{2}){5}$/,
  /^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$/,
  /^[0-9a-f]{12}$/,
];

export function parseMac(text: string): Mac {
  const t = text.trim().toLowerCase();
  if (!FORMS.some((re) => re.test(t))) {
    throw new ValidationError(`not a MAC address: ${JSON.stringify(text.slice(0, 40))}`);
  }
  return t.replace(/[:.-]/g, '').match(/../g)!.join(':') as Mac;
}

export function isMac(text: string): boolean {
  try {
    parseMac(text);
    return true;
  } catch {
    return false;
  }
}

export function macFromBytes(b: Uint8Array): Mac {
  if (b.length < 6) throw new ValidationError('MAC needs 6 bytes');
  return Array.from(b.subarray(0, 6), (x) => x.toString(16).padStart(2, '0')).join(':') as Mac;
}

export function macToBytes(mac: Mac): Buffer {
  return Buffer.from(mac.replace(/:/g, ''), 'hex');
}

/** `aa-bb-cc-dd-ee-ff`: the form pxelinux and kiln's iPXE script paths use. */
export function macDashes(mac: Mac): string {
  return mac.replace(/:/g, '-');
}
