import { ValidationError } from '../../lib/errors.js';

/**
 * Everything rendered into a boot script comes from the database or the network (a hostname, a
 * token, a URL built from a request's address). The three script languages kiln writes — iPXE,
 * pxelinux and grub — each treat different characters as syntax: iPXE expands `${…}` and splits on
 * `||`/`&&`; grub expands `$`, splits on `;` and honours quotes; all three end a command at a
 * newline. Rather than escaping for three grammars, kiln only renders words drawn from a small
 * alphabet that is plain text in all of them, and refuses anything else with a ValidationError.
 */

/** Word characters no script language here gives meaning to. `&` and `?` stay out: URLs kiln renders have no query. */
const PARAM = /^[A-Za-z0-9_.-]+(=[A-Za-z0-9_.:/@+,%~-]*)?$/;
const URL_RE = /^https?:\/\/[A-Za-z0-9.\-:[\]]+(\/[A-Za-z0-9_.:/@+,%~-]*)?$/;
const NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAX_CMDLINE = 2048;

export function checkKernelParam(p: string): string {
  if (p.length === 0 || p.length > 1024 || !PARAM.test(p)) {
    throw new ValidationError(`kernel parameter not renderable safely: ${JSON.stringify(p.slice(0, 80))}`, {
      field: 'params',
    });
  }
  return p;
}

/** The kernel command line: the words joined by spaces, each checked, the whole bounded (x86 allows 2048 bytes). */
export function kernelCmdline(params: readonly string[]): string {
  const line = params.map(checkKernelParam).join(' ');
  if (line.length > MAX_CMDLINE) {
    throw new ValidationError(`kernel command line longer than ${MAX_CMDLINE} bytes`, { field: 'params' });
  }
  return line;
}

export function checkUrl(u: string): string {
  if (u.length > 1024 || !URL_RE.test(u)) {
    throw new ValidationError(`URL not renderable safely: ${JSON.stringify(u.slice(0, 80))}`, {
      field: 'url',
    });
  }
  return u;
}

export function checkName(n: string): string {
  if (!NAME.test(n) || n === '.' || n === '..') {
    throw new ValidationError(`file name not renderable safely: ${JSON.stringify(n.slice(0, 80))}`, {
      field: 'name',
    });
  }
  return n;
}
