// What the runner asks the load generator to do (a plan), and the messages they exchange over
// the generator's IPC channel. Plain data only: it crosses a process boundary.

import type { ServerName } from "../clients/index.ts";
import type { ClientAuth } from "../clients/protocol-client.ts";
import type { Summary } from "./samples.ts";

interface PlanBase {
  server: ServerName;
  port: number;
  auth: ClientAuth;
  /** Rooms are named `<roomPrefix>-<n>`, so runs sharing a server never share a room. */
  roomPrefix: string;
  /** Worker threads the generator spreads its clients over. */
  workers: number;
}

/** Rooms of clients; the first `writersPerRoom` of each room send updates at a fixed rate. */
export interface FanoutPlan extends PlanBase {
  kind: "fanout";
  rooms: number;
  clientsPerRoom: number;
  writersPerRoom: number;
  /** Updates per second sent by each writer (open loop). */
  ratePerWriter: number;
  /** Updates sent during warm-up count for loss but not for rate or latency. */
  warmupMs: number;
  measureMs: number;
  /** Longest wait after the last send for deliveries still in flight. */
  drainMs: number;
  /** The server acknowledges every update (Parley): wait for and time the acks. */
  acks: boolean;
  /**
   * Several nodes of one cluster (the cluster scenario): member m of every room connects to
   * ports[m % ports.length], so each room's clients and writers are split between the nodes and
   * most deliveries cross from one node to another. Absent: every client uses `port`.
   */
  ports?: number[];
  /**
   * Joins under load: this many more clients per room connect and sync once the measured window
   * starts (they receive, but are not counted as receivers); the time each takes to sync is reported.
   */
  joinersPerRoom?: number;
}

/** Clients that join a room, sync, and then stay silent. */
export interface IdlePlan extends PlanBase {
  kind: "idle";
  rooms: number;
  clientsPerRoom: number;
  /** Connected first, so the memory baseline is taken on a server that has served clients. */
  warmClients: number;
}

/** One document of `seedBytes`, then `clients` clients joining it all at once. */
export interface JoinPlan extends PlanBase {
  kind: "join";
  clients: number;
  seedBytes: number;
  timeoutMs: number;
}

export type LoadPlan = FanoutPlan | IdlePlan | JoinPlan;

/** Result of a fan-out run, merged over all workers. */
export interface FanoutResult {
  kind: "fanout";
  /** Updates per second sent during the measured window. */
  offeredUpdatesPerSec: number;
  /** Deliveries per second (updates received by clients other than the writer), measured window. */
  deliveriesPerSec: number;
  expectedDeliveries: number;
  receivedDeliveries: number;
  /** expected − received after the drain period (all updates, warm-up included). */
  loss: number;
  duplicates: number;
  /** Updates received that no writer of the room sent (should be zero). */
  unknown: number;
  /** Send → receive, milliseconds, measured window. */
  latency: Summary;
  /** Actual send time − scheduled send time: how far the generator fell behind. */
  sendLag: Summary;
  /** Send → ack (Parley), milliseconds. */
  ack: Summary | null;
  connectFailures: number;
  /** Sockets the server closed during the run. */
  closedDuringRun: number;
  errors: string[];
  /** Joins under load (plan.joinersPerRoom), null when the plan has none. */
  joins: JoinsUnderLoad | null;
}

/** Clients that joined while the load ran: how long each took to sync, and the last one. */
export interface JoinsUnderLoad {
  attempted: number;
  synced: number;
  failed: number;
  /** Join start → the last client synced, milliseconds. */
  allSyncedMs: number;
  /** Per-client open → sync step 2, milliseconds. */
  syncTime: Summary;
}

/** Result of an idle run. */
export interface IdleResult {
  kind: "idle";
  /** Clients connected after the warm-up ones (the ones the memory delta is divided by). */
  connected: number;
  connectFailures: number;
  connectMs: number;
  errors: string[];
}

/** Result of a join storm. */
export interface JoinResult {
  kind: "join";
  /** Bytes of document state the seeding client wrote. */
  seededBytes: number;
  synced: number;
  failed: number;
  /** Storm start → the last client synced, milliseconds. */
  allSyncedMs: number;
  /** Per-client connect → sync step 2 received, milliseconds. */
  syncTime: Summary;
  /** Smallest sync step 2 a client received, bytes (≥ seededBytes when the sync was complete). */
  minSyncBytes: number;
  errors: string[];
}

export type LoadResult = FanoutResult | IdleResult | JoinResult;

/** Points where the generator waits for the runner to measure the server. */
export type PhaseName = "warm" | "connected" | "seeded";

/** Runner → generator. */
export type RunnerMessage = { type: "run"; plan: LoadPlan } | { type: "continue" };

/** Generator → runner. */
export type GeneratorMessage =
  /** Waits for "continue": the runner measures the server in this state first. */
  | { type: "phase"; name: PhaseName }
  /** The measured window starts or ends now. */
  | { type: "mark"; name: "measure-start" | "measure-end" }
  | { type: "result"; result: LoadResult }
  | { type: "failed"; error: string };

/** The room name (Parley conversation id) of room `index` of a plan. */
export function roomName(plan: Pick<LoadPlan, "roomPrefix">, index: number): string {
  return `${plan.roomPrefix}-${index}`;
}

/** Every room name a plan uses. */
export function planRooms(plan: Pick<LoadPlan, "roomPrefix"> & ({ kind: "join" } | { kind: "fanout" | "idle"; rooms: number })): string[] {
  const count = plan.kind === "join" ? 1 : plan.rooms;
  return Array.from({ length: count }, (_, i) => roomName(plan, i));
}
