import { bool, type Infer, int, list, oneOf, port, str } from './leaf.js';

/**
 * Every configuration key kiln knows, with its default and meaning. Keys are lower snake_case path
 * segments; `KILN_` + the path upper-cased with `.` as `_` overrides any of them from the environment
 * (`rack.tftp.port` → `KILN_RACK_TFTP_PORT`). This tree is the only place defaults live.
 */
export const schema = {
  data_dir: str('/var/lib/kiln', 'Database, secrets, images and caches. `npm start` uses ./.kiln.'),
  log: {
    level: oneOf(
      ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'],
      'info',
      'Log level (JSON lines on stdout).',
    ),
  },
  native: {
    enabled: bool(
      true,
      'Use the native addon (sendfile, SO_REUSEPORT). false forces the pure-Node fallbacks.',
    ),
  },
  region: {
    http: {
      host: str('::', 'Address the region HTTP server (API, UI, /rpc, /metrics) binds.'),
      port: port(5240, 'Region HTTP port.'),
      body_limit_bytes: int(1_048_576, 'Largest accepted API request body.', 1024, 1 << 30),
    },
    rpc: {
      host: str('::', 'Address the region RPC server binds.'),
      port: port(5250, 'Region RPC port (msgpack over TLS).'),
    },
    workers: int(0, 'Region worker processes; 0 means one per CPU.', 0, 256),
    url: str(
      '',
      'URL machines and racks use to reach the region (metadata API). Empty: derived from the request.',
    ),
  },
  rack: {
    name: str('', 'Rack name shown in the region. Empty: the host name.'),
    region_urls: list(['http://127.0.0.1:5240'], 'Region HTTP URLs used for /rpc discovery.'),
    secret_file: str('', 'Shared RPC secret. Empty: <data_dir>/secret (the file the region creates).'),
    workers: int(1, 'Rack TFTP/HTTP worker processes (SO_REUSEPORT).', 1, 64),
    advertise_address: str(
      '',
      'IPv4 address machines use to reach this rack. Empty: the address a request arrived on.',
    ),
    tftp: {
      enabled: bool(true, 'Serve TFTP.'),
      host: str('0.0.0.0', 'Address TFTP binds.'),
      port: port(69, 'TFTP port.'),
      timeout_ms: int(1000, 'Retransmission timeout when the client sets none.', 100, 60_000),
      retries: int(5, 'Retransmissions before a transfer is abandoned.', 1, 50),
    },
    http: {
      host: str('::', 'Address the rack boot HTTP server binds.'),
      port: port(5248, 'Rack boot HTTP port (iPXE scripts, kernels, images).'),
    },
    dhcp: {
      enabled: bool(true, 'Serve DHCP on subnets the region marks managed for this rack.'),
      port: port(67, 'DHCP server port.'),
      proxy_port: port(4011, 'proxyDHCP (PXE boot server) port.'),
      interfaces: list([], 'Interfaces DHCP may serve; empty means every interface inside a managed subnet.'),
      ipv6_ra: bool(
        true,
        'Answer router solicitations (lifetime 0, no prefix) so iPXE does not wait for IPv6.',
      ),
    },
    cache: {
      max_bytes: int(
        20 * 1024 ** 3,
        'Image cache size limit; least recently used files are evicted past it.',
        0,
        Number.MAX_SAFE_INTEGER,
      ),
    },
  },
} as const;

export type Config = Infer<typeof schema>;
