// A writer for the cpio "newc" format the Linux kernel unpacks as an initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst). Written here rather than calling
// cpio(1) so the archive can hold /dev/console without root (no mknod) and so the same inputs give
// the same bytes (fixed inode numbers, owners and mtimes): an unchanged rebuild has the same sha256.
//
//   header (110 bytes, ASCII hex):
//   +--------+--------+--------+--------+--------+--------+--------+--------+
//   | "070701" magic | ino | mode | uid | gid | nlink | mtime | filesize |
//   | devmajor | devminor | rdevmajor | rdevminor | namesize | check       |
//   +--------------------------------------------------------------------+
//   then the name and a NUL, padded to a multiple of 4; then the data, padded to a multiple of 4.

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

/**
 * @typedef {{ type: 'dir', path: string, mode?: number }
 *   | { type: 'file', path: string, data: Buffer, mode?: number }
 *   | { type: 'symlink', path: string, target: string }
 *   | { type: 'chardev', path: string, major: number, minor: number, mode?: number }} Entry
 */

function hex8(n) {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`cpio field out of range: ${n}`);
  return n.toString(16).padStart(8, '0');
}

function pad4(n) {
  return (4 - (n % 4)) % 4;
}

function record(ino, mode, nlink, rdev, name, data) {
  const nameBuf = Buffer.from(`${name}\0`, 'utf8');
  const header =
    '070701' +
    hex8(ino) +
    hex8(mode) +
    hex8(0) + // uid: root
    hex8(0) + // gid: root
    hex8(nlink) +
    hex8(0) + // mtime: fixed, for reproducible archives
    hex8(data.length) +
    hex8(0) +
    hex8(0) +
    hex8(rdev[0]) +
    hex8(rdev[1]) +
    hex8(nameBuf.length) +
    hex8(0);
  return [
    Buffer.from(header, 'ascii'),
    nameBuf,
    Buffer.alloc(pad4(110 + nameBuf.length)),
    data,
    Buffer.alloc(pad4(data.length)),
  ];
}

/**
 * Encodes entries (parents before children; paths without a leading slash) into one newc archive.
 * @param {Entry[]} entries
 * @returns {Buffer}
 */
export function encodeNewc(entries) {
  const parts = [];
  let ino = 1;
  for (const e of entries) {
    const name = e.path.replace(/^\/+/, '');
    if (name === '' || name.split('/').includes('..')) throw new Error(`bad cpio path: ${e.path}`);
    switch (e.type) {
      case 'dir':
        parts.push(...record(ino++, S_IFDIR | (e.mode ?? 0o755), 2, [0, 0], name, Buffer.alloc(0)));
        break;
      case 'file':
        parts.push(...record(ino++, S_IFREG | (e.mode ?? 0o644), 1, [0, 0], name, e.data));
        break;
      case 'symlink':
        parts.push(...record(ino++, S_IFLNK | 0o777, 1, [0, 0], name, Buffer.from(e.target, 'utf8')));
        break;
      case 'chardev':
        parts.push(
          ...record(ino++, S_IFCHR | (e.mode ?? 0o600), 1, [e.major, e.minor], name, Buffer.alloc(0)),
        );
        break;
      default:
        throw new Error(`unknown cpio entry type ${/** @type {any} */ (e).type}`);
    }
  }
  parts.push(...record(0, 0, 1, [0, 0], 'TRAILER!!!', Buffer.alloc(0)));
  return Buffer.concat(parts);
}
