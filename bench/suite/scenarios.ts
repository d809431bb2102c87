// The scenarios and their parameters for the quick and the full suite. Offered rates are fixed
// per scenario and the same for every server; they were picked so the relay sustains them with
// no loss and p99 in single-digit milliseconds on the 2-core reference machine.

/** Scenario names, in report order. */
export type ScenarioName = "broadcast" | "chatty" | "big-room" | "join-load" | "idle" | "join-storm" | "cluster";
export const SCENARIO_NAMES: readonly ScenarioName[] = ["broadcast", "chatty", "big-room", "join-load", "idle", "join-storm", "cluster"];

/** Rooms of clients with a few writers each, open loop at a fixed rate. */
export interface FanoutScenario {
  kind: "fanout";
  rooms: number;
  clientsPerRoom: number;
  writersPerRoom: number;
  ratePerWriter: number;
  /** Joins under load: this many more clients per room connect once the measured window starts. */
  joinersPerRoom?: number;
}

/** Timing of every fan-out run in a suite. */
export interface Timing {
  warmupMs: number;
  measureMs: number;
  drainMs: number;
}

export interface SuiteConfig {
  mode: "quick" | "full";
  timing: Timing;
  fanout: Record<"broadcast" | "chatty" | "big-room" | "join-load", FanoutScenario>;
  idle: { rooms: number; clientsPerRoom: number; warmClients: number };
  join: { clients: number; seedBytes: number; timeoutMs: number };
  /** Cluster scenario: this load on two Parley nodes sharing Postgres and Redis, then on one node. */
  cluster: FanoutScenario;
  /** HTTP benchmarks: seconds per route (autocannon's duration); 0 = not run. */
  httpSeconds: number;
  /** Chatty scenario, rate per writer to try in turn (--full only); empty = no step mode. */
  stepRates: number[];
  stepTiming: Timing;
  /** One server process per server for all its scenarios (quick) instead of one per case (full). */
  shareServers: boolean;
  /** Nice value of the server and generator processes (--priority: negative, ahead of other work). */
  niceness: number;
  /** What --priority did, for the report ("" = normal priority). */
  priority: string;
  /** Threads of the load generator. */
  generatorThreads: number;
  /** Stop starting new cases after this long (the suite's time budget). */
  budgetMs: number;
}

const fanout = (rooms: number, clientsPerRoom: number, writersPerRoom: number, ratePerWriter: number): FanoutScenario => ({
  kind: "fanout",
  rooms,
  clientsPerRoom,
  writersPerRoom,
  ratePerWriter,
});

// The rates of issue 12, the load of a busy helpdesk on one node.
const SCENARIOS = {
  // 10 writers × 200/s = 2,000 updates/s → 198,000 deliveries/s.
  broadcast: fanout(10, 100, 1, 200),
  // 500 writers × 40/s = 20,000 updates/s → 180,000 deliveries/s.
  chatty: fanout(50, 10, 10, 40),
  // 1 writer × 100/s = 100 updates/s → 99,900 deliveries/s.
  "big-room": fanout(1, 1000, 1, 100),
  // The chatty load, and 500 more clients (10 per room) joining at once while it runs.
  "join-load": { ...fanout(50, 10, 10, 40), joinersPerRoom: 10 },
};

export function suiteConfig(mode: "quick" | "full"): SuiteConfig {
  const quick = mode === "quick";
  return {
    mode,
    timing: quick ? { warmupMs: 1000, measureMs: 2500, drainMs: 1500 } : { warmupMs: 2000, measureMs: 6000, drainMs: 3000 },
    fanout: SCENARIOS,
    // 5000 idle clients in 100 rooms, measured on top of 250 warm-up ones (5 rooms' worth).
    idle: { rooms: 105, clientsPerRoom: 50, warmClients: 250 },
    // 500 joiners of a 5 MiB document take Parley ~50 s alone: the quick suite storms with 50.
    join: { clients: quick ? 50 : 500, seedBytes: 5 * 1024 * 1024, timeoutMs: quick ? 40_000 : 120_000 },
    // The chatty shape (every client writes, so nearly every room's deliveries cross nodes) at
    // 5/s per writer: two nodes, Postgres and Redis share this machine's two cores, and the
    // figures this row is for (CPU and service operations per update) need a load they carry.
    cluster: fanout(50, 10, 10, 5),
    httpSeconds: quick ? 2 : 10,
    // Quick: the rates the issue names (10, 20, 40 per writer); full: finer steps, further up.
    stepRates: quick ? [10, 20, 40] : [5, 10, 15, 20, 30, 40, 60, 80],
    stepTiming: quick ? { warmupMs: 1000, measureMs: 2000, drainMs: 1500 } : { warmupMs: 2000, measureMs: 6000, drainMs: 3000 },
    shareServers: quick,
    niceness: 0,
    priority: "",
    generatorThreads: 2,
    budgetMs: quick ? 290_000 : 40 * 60_000,
  };
}

/** A tiny configuration for tests: every scenario at toy size, a few seconds in all. */
export function smokeConfig(): SuiteConfig {
  return {
    mode: "quick",
    timing: { warmupMs: 100, measureMs: 400, drainMs: 500 },
    fanout: {
      broadcast: fanout(2, 5, 1, 20),
      chatty: fanout(2, 4, 4, 5),
      "big-room": fanout(1, 10, 1, 20),
      "join-load": { ...fanout(2, 4, 4, 5), joinersPerRoom: 2 },
    },
    idle: { rooms: 3, clientsPerRoom: 5, warmClients: 5 },
    join: { clients: 5, seedBytes: 64 * 1024, timeoutMs: 10_000 },
    cluster: fanout(2, 4, 4, 5),
    httpSeconds: 1,
    stepRates: [],
    stepTiming: { warmupMs: 100, measureMs: 400, drainMs: 500 },
    shareServers: true,
    niceness: 0,
    priority: "",
    generatorThreads: 2,
    // Generous: the smoke suite is a test of the runner, on machines as busy as CI.
    budgetMs: 240_000,
  };
}

/** A fan-out load in words ("10 writers × 20/s → 10×100 clients"). */
export function describeFanout(f: FanoutScenario): string {
  const writers = f.rooms * f.writersPerRoom;
  return `${writers} writer${writers > 1 ? "s" : ""} × ${f.ratePerWriter}/s → ${f.rooms}×${f.clientsPerRoom} clients`;
}

/** The offered load of a scenario, in words, for the report. */
export function describeLoad(scenario: ScenarioName, config: SuiteConfig): string {
  switch (scenario) {
    case "broadcast":
    case "chatty":
    case "big-room":
      return describeFanout(config.fanout[scenario]);
    case "join-load": {
      const f = config.fanout[scenario];
      return `${describeFanout(f)}; ${f.rooms * (f.joinersPerRoom ?? 0)} join during it`;
    }
    case "idle": {
      const { rooms, clientsPerRoom, warmClients } = config.idle;
      return `${rooms * clientsPerRoom - warmClients} idle clients in ${rooms - warmClients / clientsPerRoom} rooms (after ${warmClients} warm-up)`;
    }
    case "join-storm": {
      const mib = config.join.seedBytes / 1048576;
      return `${config.join.clients} clients join a ${mib >= 1 ? mib.toFixed(0) : mib.toFixed(2)} MiB document`;
    }
    case "cluster":
      return describeFanout(config.cluster);
  }
}
