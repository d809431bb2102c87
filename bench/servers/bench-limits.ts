// Every benchmark client connects from 127.0.0.1, so one address stands for thousands of people:
// the per-address abuse limits (server/limits/) would measure themselves, not the server.

/** Settings that lift the per-address limits for a benchmark run (the other layers stay). */
export const ONE_ADDRESS_FOR_ALL_CLIENTS = {
  PARLEY_MAX_CONNECTIONS_PER_ADDRESS: "10000000",
  PARLEY_RATE_LIMIT_ADDRESS: "100000000",
} as const;
