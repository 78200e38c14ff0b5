/** Every RPC command kiln knows; both roles import their commands from here. */
export { BootFile, BootPurpose, GetBootConfig } from './boot.js';
export { Ping } from './common.js';
export { SendEvent } from './events.js';
export { Identify } from './identify.js';
export { RackInterface, RegisterRack } from './rack-registration.js';
