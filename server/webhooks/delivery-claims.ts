// Which node delivers an endpoint. Alone, this node delivers every endpoint. With several nodes
// sharing Postgres, exactly one node at a time holds an endpoint's claim: a session-level
// advisory lock on one dedicated connection. Postgres releases a session's locks the moment its
// connection ends, so a node that dies (or loses the database) frees its endpoints for the
// others without a lease to expire or clocks to agree; the others try to claim them every few
// seconds. A delivery in flight when the lock connection broke may be repeated by the new holder
// (receivers deduplicate on the event id, as after a crash).

import { createHash } from "node:crypto";
import type pg from "pg";
import type { StorePool } from "../sql/pg-pool.ts";
import { monotonicClock } from "../platform/clock.ts";

export interface DeliveryClaims {
  /** True when this node holds the endpoint's claim, taking it if free. */
  claim(endpointId: string): Promise<boolean>;
  /** True while this node holds the claim (false once it was lost with its connection). */
  holds(endpointId: string): boolean;
  /**
   * Just before a delivery: true when the claim is still held, checking (at most every second)
   * that its connection still answers. A node cut off from Postgres stops delivering here, before
   * the database ends its session and another node takes the endpoint.
   */
  confirm(endpointId: string): Promise<boolean>;
  /** Lets another node take the endpoint. */
  release(endpointId: string): Promise<void>;
  close(): Promise<void>;
}

/** One node alone: it holds every claim. */
export const SOLE_NODE_CLAIMS: DeliveryClaims = {
  claim: async () => true,
  holds: () => true,
  confirm: async () => true,
  release: async () => {},
  close: async () => {},
};

/** The advisory lock key of an endpoint: 64 bits of a hash, the same on every node. */
export function claimLockKey(endpointId: string): string {
  return createHash("sha256").update(`parley/webhook-delivery/${endpointId}`).digest().readBigInt64BE(0).toString();
}

/** How long a check of the claims' connection may take before the claims are given up. */
const CONFIRM_TIMEOUT_MS = 2000;
/** A check of the claims' connection is trusted this long. */
const CONFIRM_FRESH_MS = 1000;

/** Claims as advisory locks on one connection of `pool`, taken when first needed. */
export class PostgresDeliveryClaims implements DeliveryClaims {
  private connection: Promise<pg.PoolClient> | null = null;
  private readonly held = new Set<string>();
  private confirmedAt = Number.NEGATIVE_INFINITY;
  private checking: Promise<boolean> | null = null;
  private closed = false;

  constructor(private readonly pool: StorePool) {}

  async claim(endpointId: string): Promise<boolean> {
    if (this.closed) return false;
    if (this.held.has(endpointId)) return true;
    const connection = this.client();
    const client = await connection;
    const { rows } = await client.query<{ taken: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS taken", [claimLockKey(endpointId)]);
    // Held only while the session that took it is the current one (check() may have given it up meanwhile).
    if (rows[0]?.taken && this.connection === connection) this.held.add(endpointId);
    return this.held.has(endpointId);
  }

  holds(endpointId: string): boolean {
    return this.held.has(endpointId);
  }

  async confirm(endpointId: string): Promise<boolean> {
    if (!this.held.has(endpointId) || !this.connection) return false;
    if (monotonicClock() - this.confirmedAt < CONFIRM_FRESH_MS) return true;
    this.checking ??= this.check().finally(() => {
      this.checking = null;
    });
    return (await this.checking) && this.held.has(endpointId);
  }

  /** One round trip on the claims' connection; on failure every claim is given up with it. */
  private async check(): Promise<boolean> {
    const connection = this.connection;
    if (!connection) return false;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), CONFIRM_TIMEOUT_MS);
    });
    const answered = connection.then(
      (client) => client.query("SELECT 1").then(() => true as const),
      () => false as const,
    );
    try {
      if (await Promise.race([answered.catch(() => false as const), timedOut])) {
        this.confirmedAt = monotonicClock();
        return true;
      }
    } finally {
      clearTimeout(timer);
    }
    if (this.connection === connection) {
      this.connection = null;
      this.held.clear();
      void connection.then((client) => client.release(true)).catch(() => {});
    }
    return false;
  }

  async release(endpointId: string): Promise<void> {
    if (!this.held.delete(endpointId) || !this.connection) return;
    const client = await this.connection;
    await client.query("SELECT pg_advisory_unlock($1::bigint)", [claimLockKey(endpointId)]).catch(() => {});
  }

  async close(): Promise<void> {
    this.closed = true;
    const connection = this.connection;
    this.connection = null;
    this.held.clear();
    const client = connection ? await connection.catch(() => null) : null;
    if (!client) return;
    // Unlocked at once for the other nodes (ending the session would too, once the server notices).
    await client.query("SELECT pg_advisory_unlock_all()").catch(() => {});
    client.release(true);
  }

  private client(): Promise<pg.PoolClient> {
    if (!this.connection) {
      const connecting = this.pool.connect();
      this.connection = connecting;
      connecting.then(
        (client) =>
          client.on("error", () => {
            // The session is gone and its locks with it: claim again on a new connection (unless
            // this one was already given up, and released, by check() or close()).
            if (this.connection !== connecting) return;
            this.connection = null;
            this.held.clear();
            client.release(true);
          }),
        () => {
          if (this.connection === connecting) this.connection = null;
        },
      );
    }
    return this.connection;
  }
}
