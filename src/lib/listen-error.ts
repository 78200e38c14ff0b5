/**
 * Turn a failed bind/listen into a sentence an operator can act on: which port, why, and how to fix
 * it. Daemons log this and keep their other services running.
 */
export function explainListenError(err: unknown, what: string, port: number, configKey: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const env = `KILN_${configKey.toUpperCase().replace(/\./g, '_')}`;
  if (code === 'EACCES' || code === 'EPERM') {
    return (
      `${what} cannot listen on port ${port}: ports below 1024 need privileges. ` +
      `Run kiln through its systemd unit (it grants CAP_NET_BIND_SERVICE), or ` +
      `\`sudo setcap cap_net_bind_service,cap_net_raw=+ep $(readlink -f $(which node))\`, ` +
      `or choose another port with ${configKey} (${env}). The other services keep running.`
    );
  }
  if (code === 'EADDRINUSE') {
    return (
      `${what} cannot listen on port ${port}: another program already uses it ` +
      `(\`ss -lntup | grep :${port}\` shows which). Stop it or choose another port with ${configKey} (${env}). ` +
      `The other services keep running.`
    );
  }
  if (code === 'EADDRNOTAVAIL') {
    return `${what} cannot listen on port ${port}: the address to bind is not on this host. Check the matching host key.`;
  }
  const msg = err instanceof Error ? err.message : String(err);
  return `${what} cannot listen on port ${port}: ${msg}. The other services keep running.`;
}
