// The scenarios and their parameters for the quick and the full suite. Offered rates are fixed
// per scenario and the same for every server; they were picked so the relay sustains them with
// no loss and p99 in single-digit milliseconds on the 2-core reference machine.

/** Scenario names, in report order. */
export type ScenarioName = "broadcast" | "chatty" | "big-room" | "idle" | "join-storm" | "cluster";
export const SCENARIO_NAMES: readonly ScenarioName[] = ["broadcast", "chatty", "big-room", "idle", "join-storm", "cluster"];

/** Rooms of clients with a few writers each, open loop at a fixed rate. */
export interface FanoutScenario {
  kind: "fanout";
  rooms: number;
  clientsPerRoom: number;
  writersPerRoom: number;
  ratePerWriter: number;
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
  fanout: Record<"broadcast" | "chatty" | "big-room", FanoutScenario>;
  idle: { rooms: number; clientsPerRoom: number; warmClients: number };
  join: { clients: number; seedBytes: number; timeoutMs: number };
  /** Cluster scenario: this load on two Parley nodes sharing Postgres and Redis, then on one node. */
  cluster: FanoutScenario;
  /** HTTP benchmarks: seconds per route (autocannon's duration). */
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

const SCENARIOS = {
  // 10 writers × 20/s = 200 updates/s → 19,800 deliveries/s.
  broadcast: fanout(10, 100, 1, 20),
  // 500 writers × 2/s = 1,000 updates/s → 9,000 deliveries/s.
  chatty: fanout(50, 10, 10, 2),
  // 1 writer × 20/s = 20 updates/s → 19,980 deliveries/s.
  "big-room": fanout(1, 1000, 1, 20),
};

export function suiteConfig(mode: "quick" | "full"): SuiteConfig {
  const quick = mode === "quick";
  return {
    mode,
    timing: quick ? { warmupMs: 500, measureMs: 2000, drainMs: 1500 } : { warmupMs: 1000, measureMs: 10_000, drainMs: 3000 },
    fanout: SCENARIOS,
    // 2000 idle clients measured on top of 200 warm-up ones (10 rooms' worth).
    idle: { rooms: 110, clientsPerRoom: 20, warmClients: 200 },
    // 500 joiners of a 5 MiB document take Parley ~50 s alone: the quick suite storms with 50.
    join: { clients: quick ? 50 : 500, seedBytes: 5 * 1024 * 1024, timeoutMs: quick ? 40_000 : 120_000 },
    // The chatty load (every client writes), so nearly every room's deliveries cross nodes.
    cluster: SCENARIOS.chatty,
    httpSeconds: quick ? 2 : 10,
    stepRates: quick ? [] : [1, 1.5, 2, 3, 4, 6, 8, 12, 16, 24],
    stepTiming: { warmupMs: 1000, measureMs: 5000, drainMs: 2000 },
    shareServers: quick,
    niceness: 0,
    priority: "",
    generatorThreads: 2,
    budgetMs: quick ? 175_000 : 40 * 60_000,
  };
}

/** A tiny configuration for tests: every scenario at toy size, a few seconds in all. */
export function smokeConfig(): SuiteConfig {
  return {
    mode: "quick",
    timing: { warmupMs: 100, measureMs: 400, drainMs: 500 },
    fanout: { broadcast: fanout(2, 5, 1, 20), chatty: fanout(2, 4, 4, 5), "big-room": fanout(1, 10, 1, 20) },
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
