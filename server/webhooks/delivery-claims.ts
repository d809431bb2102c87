// Which node delivers an endpoint. Alone, this node delivers every endpoint. With several nodes
// sharing Postgres, exactly one node at a time holds an endpoint's claim: a session-level
// advisory lock on one dedicated connection. Postgres releases a session's locks the moment its
// connection ends, so a node that dies (or loses the database) frees its endpoints for the
// others without a lease to expire or clocks to agree; the others try to claim them every few
// seconds. A delivery in flight when the lock connection broke may be repeated by the new holder
// (receivers deduplicate on the event id, as after a crash).

import { createHash } from "node:crypto";
import type pg from "pg";
import type { StorePool } from "../store/postgres/pool.ts";

export interface DeliveryClaims {
  /** True when this node holds the endpoint's claim, taking it if free. */
  claim(endpointId: string): Promise<boolean>;
  /** True while this node holds the claim (false once it was lost with its connection). */
  holds(endpointId: string): boolean;
  /** Lets another node take the endpoint. */
  release(endpointId: string): Promise<void>;
  close(): Promise<void>;
}

/** One node alone: it holds every claim. */
export const SOLE_NODE_CLAIMS: DeliveryClaims = {
  claim: async () => true,
  holds: () => true,
  release: async () => {},
  close: async () => {},
};

/** The advisory lock key of an endpoint: 64 bits of a hash, the same on every node. */
function lockKey(endpointId: string): string {
  return createHash("sha256").update(`parley/webhook-delivery/${endpointId}`).digest().readBigInt64BE(0).toString();
}

/** Claims as advisory locks on one connection of `pool`, taken when first needed. */
export class PostgresDeliveryClaims implements DeliveryClaims {
  private connection: Promise<pg.PoolClient> | null = null;
  private readonly held = new Set<string>();
  private closed = false;

  constructor(private readonly pool: StorePool) {}

  async claim(endpointId: string): Promise<boolean> {
    if (this.closed) return false;
    if (this.held.has(endpointId)) return true;
    const client = await this.client();
    const { rows } = await client.query<{ taken: boolean }>("SELECT pg_try_advisory_lock($1::bigint) AS taken", [lockKey(endpointId)]);
    if (rows[0]?.taken) this.held.add(endpointId);
    return this.held.has(endpointId);
  }

  holds(endpointId: string): boolean {
    return this.held.has(endpointId);
  }

  async release(endpointId: string): Promise<void> {
    if (!this.held.delete(endpointId) || !this.connection) return;
    const client = await this.connection;
    await client.query("SELECT pg_advisory_unlock($1::bigint)", [lockKey(endpointId)]).catch(() => {});
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
            // The session is gone and its locks with it: claim again on a new connection.
            if (this.connection === connecting) this.connection = null;
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
