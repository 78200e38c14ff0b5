import type Database from 'better-sqlite3';
import { ValidationError } from '../lib/errors.js';
import { requireSubnet } from './subnets.js';

/**
 * Per-subnet DHCP settings the subnet itself has no field for: the domain name (option 15) and
 * the lease time. A subnet without a row has the defaults.
 */
export interface SubnetDhcpSettings {
  domain: string | null;
  lease_seconds: number;
}

export const DEFAULT_LEASE_SECONDS = 3600;
export const MIN_LEASE_SECONDS = 60;
export const MAX_LEASE_SECONDS = 365 * 86400;

// RFC 1035 §2.3.1 names: labels of letters, digits and inner hyphens, 253 characters in all.
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

function invalid(field: string, message: string): ValidationError {
  return new ValidationError(`${field}: ${message}`, { issues: [{ field, message }] });
}

export function getSubnetDhcpSettings(db: Database.Database, subnetId: number): SubnetDhcpSettings {
  const row = db
    .prepare('SELECT domain, lease_seconds FROM dhcp_subnet_settings WHERE subnet_id = ?')
    .get(subnetId) as SubnetDhcpSettings | undefined;
  return row ?? { domain: null, lease_seconds: DEFAULT_LEASE_SECONDS };
}

/** Merges the patch over the stored settings; NotFoundError for an unknown subnet. */
export function setSubnetDhcpSettings(
  db: Database.Database,
  subnetId: number,
  patch: { domain?: string | null | undefined; lease_seconds?: number | undefined },
): SubnetDhcpSettings {
  if (patch.domain !== undefined && patch.domain !== null && !DOMAIN.test(patch.domain)) {
    throw invalid('domain', 'must be a DNS name such as lab.example.com');
  }
  if (
    patch.lease_seconds !== undefined &&
    (!Number.isInteger(patch.lease_seconds) ||
      patch.lease_seconds < MIN_LEASE_SECONDS ||
      patch.lease_seconds > MAX_LEASE_SECONDS)
  ) {
    throw invalid('lease_seconds', `must be an integer from ${MIN_LEASE_SECONDS} to ${MAX_LEASE_SECONDS}`);
  }
  const run = db.transaction(() => {
    requireSubnet(db, subnetId);
    const cur = getSubnetDhcpSettings(db, subnetId);
    const next: SubnetDhcpSettings = {
      domain: patch.domain !== undefined ? (patch.domain?.toLowerCase() ?? null) : cur.domain,
      lease_seconds: patch.lease_seconds ?? cur.lease_seconds,
    };
    db.prepare(
      `INSERT INTO dhcp_subnet_settings (subnet_id, domain, lease_seconds, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (subnet_id) DO UPDATE SET domain = excluded.domain, lease_seconds = excluded.lease_seconds,
         updated_at = excluded.updated_at`,
    ).run(subnetId, next.domain, next.lease_seconds, new Date().toISOString());
    return next;
  });
  return run.immediate();
}
