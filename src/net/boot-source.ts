/**
 * What the boot servers (TFTP, HTTP) ask, and what policy answers. Servers own sockets and wire
 * rules; they never decide what a machine boots. The rack's booter implements BootResolver.
 */
export interface BootRequest {
  /** The requested path as the client sent it (TFTP filename, HTTP path without query), unnormalised. */
  path: string;
  protocol: 'tftp' | 'http';
  remoteAddress: string;
  remotePort: number;
  /** The local address the request arrived on: the address the client can reach us at. */
  localAddress: string;
  /** HTTP only: the request's User-Agent (iPXE/…, UefiHttpBoot/…), for logs and the boot timeline. */
  userAgent?: string;
}

export type BootSource =
  /** A file on disk, already confined to its root by the resolver (see safe-path.ts). */
  | { kind: 'file'; path: string; contentType?: string }
  /** Content rendered for this request (iPXE script, pxelinux config). */
  | { kind: 'content'; body: Buffer; contentType?: string };

export interface BootResolver {
  /** null: not found (TFTP error 1, HTTP 404). Throwing: our fault (TFTP error 0, HTTP 500). */
  resolve(req: BootRequest): Promise<BootSource | null>;
}
