/** Every RPC command kiln knows; both roles import their commands from here. */
export { BootFile, BootPurpose, GetBootConfig } from './boot.js';
export { Ping } from './common.js';
export {
  DhcpConfig,
  DhcpConfigChanged,
  DhcpSubnetConfig,
  GetDhcpConfig,
  LeaseRecord,
  UpdateLeases,
} from './dhcp.js';
export { SendEvent } from './events.js';
export { Identify } from './identify.js';
export { BootImage, BootImageFile, ListBootImages, SyncBootImages } from './images.js';
export { RackInterface, RegisterRack } from './rack-registration.js';
