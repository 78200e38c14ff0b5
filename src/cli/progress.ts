/**
 * Progress for long transfers (image imports) on stderr, so stdout stays clean for --json: a bar
 * redrawn in place on a terminal, and plain lines at each quarter otherwise (logs, CI, pipes).
 */
export interface Progress {
  update(bytes: number, total: number | null): void;
  done(bytes: number): void;
}

function mib(n: number): string {
  return `${(n / 1048576).toFixed(1)} MiB`;
}

export function createProgress(label: string, stream: NodeJS.WriteStream = process.stderr): Progress {
  const tty = stream.isTTY === true;
  let lastQuarter = -1;
  let lastDraw = 0;
  const width = 30;
  const draw = (bytes: number, total: number | null, final: boolean) => {
    if (tty) {
      const now = Date.now();
      if (!final && now - lastDraw < 100) return;
      lastDraw = now;
      if (total && total > 0) {
        const frac = Math.min(1, bytes / total);
        const fill = Math.round(frac * width);
        stream.write(
          `\r${label} [${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${String(Math.floor(frac * 100)).padStart(3)}% ${mib(bytes)} / ${mib(total)}\x1b[K`,
        );
      } else {
        stream.write(`\r${label} ${mib(bytes)}\x1b[K`);
      }
      if (final) stream.write('\n');
      return;
    }
    if (final) {
      stream.write(`${label}: ${mib(bytes)} done\n`);
      return;
    }
    if (total && total > 0) {
      const q = Math.floor((bytes / total) * 4);
      if (q > lastQuarter && q > 0 && q < 4) {
        lastQuarter = q;
        stream.write(`${label}: ${mib(bytes)} / ${mib(total)} (${q * 25}%)\n`);
      }
    }
  };
  return {
    update: (bytes, total) => draw(bytes, total, false),
    done: (bytes) => draw(bytes, bytes, true),
  };
}
