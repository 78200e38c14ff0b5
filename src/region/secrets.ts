import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { KilnError } from '../lib/errors.js';
import type { Logger } from '../lib/logger.js';
import { readSecretFile } from '../rpc/secret.js';

/**
 * The region's secrets in data_dir, created on first start (or by `kiln init`) and never logged:
 *   secret            32 random bytes as hex: the shared RPC secret racks must hold a copy of
 *   tls/ca.pem        the region CA certificate (racks pin it on first contact)
 *   tls/ca-key.pem    its private key
 *   tls/region.pem    the RPC server certificate, signed by the CA, followed by the CA certificate
 *   tls/region-key.pem
 * Made with the openssl CLI (Node cannot make certificates; @peculiar/x509 needs a Reflect
 * polyfill that is not installed). Keys and the secret are mode 0600. Files are written to a temporary name and renamed, so a
 * process starting at the same moment never reads half a file.
 */

export const SECRET_FILE = 'secret';
export const TLS_DIR = 'tls';

export interface RegionSecrets {
  secret: Buffer;
  /** PEM of the CA certificate. */
  caCert: string;
  /** PEM chain: server certificate then CA certificate. */
  serverCert: string;
  serverKey: string;
}

export interface EnsureResult {
  secrets: RegionSecrets;
  /** Paths this call created (for `kiln init` to print). */
  created: string[];
}

const run = promisify(execFile);

function writeAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Read the region's own secret file. */
function readRegionSecretFile(path: string): Buffer {
  return readSecretFile(
    path,
    'run `kiln init` on the region, and give a remote rack a copy (rack.secret_file)',
  );
}

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    throw new KilnError(
      'KILN_ERR_TLS_SETUP',
      e.code === 'ENOENT'
        ? 'the openssl command is needed to create the region CA on first start: install the openssl package'
        : `openssl ${args[0]} failed: ${(e.stderr ?? e.message).trim().split('\n')[0]}`,
      {},
      { cause: err },
    );
  }
}

function serial(): string {
  return `0x${randomBytes(8)
    .toString('hex')
    .replace(/^[89a-f]/, '1')}`;
}

function subjectSafe(s: string): string {
  return s.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 60);
}

/** openssl req arguments for a new, unencrypted P-256 key (CA and server alike). */
const NEW_P256_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** CA key + self-signed CA certificate (P-256, 10 years) written into `dir`. */
async function makeCa(dir: string): Promise<void> {
  await openssl(
    [
      'req',
      '-x509',
      ...NEW_P256_KEY,
      '-keyout',
      'ca-key.pem',
      '-out',
      'ca.pem',
      '-days',
      '3650',
      '-set_serial',
      serial(),
      '-subj',
      `/O=kiln/CN=kiln region CA ${subjectSafe(hostname())}`,
      '-addext',
      'basicConstraints=critical,CA:TRUE,pathlen:0',
      '-addext',
      'keyUsage=critical,keyCertSign,cRLSign',
      '-addext',
      'subjectKeyIdentifier=hash',
    ],
    dir,
  );
}

/** Server key + certificate signed by the CA in `caDir`, written into `dir`. */
async function makeServerCert(dir: string, caDir: string): Promise<void> {
  const host = subjectSafe(hostname());
  // Racks pin the CA and do not check names (they reach workers at whatever address /rpc gave),
  // but list the usual ones so ordinary TLS tools can talk to the port too.
  writeFileSync(
    join(dir, 'ext.cnf'),
    [
      'basicConstraints=critical,CA:FALSE',
      'keyUsage=critical,digitalSignature',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=DNS:${host},DNS:localhost,IP:127.0.0.1,IP:::1`,
      'authorityKeyIdentifier=keyid',
      '',
    ].join('\n'),
  );
  await openssl(
    [
      'req',
      '-new',
      ...NEW_P256_KEY,
      '-keyout',
      'region-key.pem',
      '-out',
      'region.csr',
      '-subj',
      `/O=kiln region/CN=${host}`,
    ],
    dir,
  );
  await openssl(
    [
      'x509',
      '-req',
      '-in',
      'region.csr',
      // openssl runs with cwd = dir: a relative caDir would point elsewhere.
      '-CA',
      resolve(caDir, 'ca.pem'),
      '-CAkey',
      resolve(caDir, 'ca-key.pem'),
      '-set_serial',
      serial(),
      '-days',
      '3650',
      '-extfile',
      'ext.cnf',
      '-out',
      'region-only.pem',
    ],
    dir,
  );
}

/**
 * Create whatever is missing (data_dir, secret, CA, server certificate) and return all of it.
 * Idempotent: existing files are kept as they are.
 */
export async function ensureRegionSecrets(dataDir: string, logger: Logger): Promise<EnsureResult> {
  const created: string[] = [];
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tlsDir = join(dataDir, TLS_DIR);
  mkdirSync(tlsDir, { recursive: true, mode: 0o700 });

  const secretPath = join(dataDir, SECRET_FILE);
  if (!existsSync(secretPath)) {
    try {
      // 'wx': if another process creates it at the same moment, keep theirs.
      writeFileSync(secretPath, `${randomBytes(32).toString('hex')}\n`, { mode: 0o600, flag: 'wx' });
      chmodSync(secretPath, 0o600);
      created.push(secretPath);
      logger.info({ path: secretPath }, 'created the RPC shared secret');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  const secret = readRegionSecretFile(secretPath);

  const caPath = join(tlsDir, 'ca.pem');
  const caKeyPath = join(tlsDir, 'ca-key.pem');
  const certPath = join(tlsDir, 'region.pem');
  const keyPath = join(tlsDir, 'region-key.pem');

  const caFresh = !existsSync(caPath) || !existsSync(caKeyPath);
  const serverFresh = caFresh || !existsSync(certPath) || !existsSync(keyPath);
  if (serverFresh) {
    // Work in a private scratch directory, then rename into place: keys are never world-readable
    // and a process starting at the same moment never sees half a file.
    const work = mkdtempSync(join(tlsDir, '.new-'));
    try {
      if (caFresh) {
        await makeCa(work);
        chmodSync(join(work, 'ca-key.pem'), 0o600);
        renameSync(join(work, 'ca-key.pem'), caKeyPath);
        renameSync(join(work, 'ca.pem'), caPath);
        created.push(caPath, caKeyPath);
        logger.info({ path: caPath }, 'created the region CA');
      }
      await makeServerCert(work, tlsDir);
      const chain = `${readFileSync(join(work, 'region-only.pem'), 'utf8').trim()}\n${readFileSync(caPath, 'utf8').trim()}\n`;
      chmodSync(join(work, 'region-key.pem'), 0o600);
      renameSync(join(work, 'region-key.pem'), keyPath);
      writeAtomic(certPath, chain, 0o644);
      created.push(certPath, keyPath);
      logger.info({ path: certPath }, 'created the region RPC certificate');
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return {
    secrets: {
      secret,
      caCert: readFileSync(caPath, 'utf8'),
      serverCert: readFileSync(certPath, 'utf8'),
      serverKey: readFileSync(keyPath, 'utf8'),
    },
    created,
  };
}

/** Read secrets already created (workers: the supervisor made them). */
export function readRegionSecrets(dataDir: string): RegionSecrets {
  const tlsDir = join(dataDir, TLS_DIR);
  return {
    secret: readRegionSecretFile(join(dataDir, SECRET_FILE)),
    caCert: readFileSync(join(tlsDir, 'ca.pem'), 'utf8'),
    serverCert: readFileSync(join(tlsDir, 'region.pem'), 'utf8'),
    serverKey: readFileSync(join(tlsDir, 'region-key.pem'), 'utf8'),
  };
}
