// The wire protocol's version. Bumped on any incompatible change to frames or control messages;
// the server names the versions it accepts in its `auth` reply and closes with 4406 otherwise.

/** The protocol version this build speaks. */
export const PROTOCOL_VERSION = 1;
