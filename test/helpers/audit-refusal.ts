// A real server whose organisation audit appends can be refused on demand: a database trigger on
// org_audit_entries (SQLite: the directory file; Postgres: a schema of the test's own) makes every
// append fail, as a full disk or a broken audit table would. Tests use it to show that a change
// whose entry cannot be written does not happen either. Also counts rows, to show nothing moved.

import { randomBytes } from "node:crypto";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll } from "vitest";
import { apiClient } from "./http-client.ts";
import { startTestServer, type TestServer } from "./server.ts";
import { requirePostgres } from "./services.ts";

/** A running server on one backend, with a switch that refuses every org audit append. */
export interface RefusableAuditServer {
  server: TestServer;
  /** The HTTP API of `server`. */
  api: ReturnType<typeof apiClient>;
  /** The environment the server was started with beyond its data directory (Postgres: DATABASE_URL), for `parley` runs on the same data. */
  env: Record<string, string>;
  /** From now on every org audit append fails (until {@link allow}); with `detailsLike`, only entries whose details JSON is LIKE it. */
  refuse(detailsLike?: string): Promise<void>;
  allow(): Promise<void>;
  /** Runs `attempt` with appends refused (see {@link refuse}), then allows them again. */
  whileRefused<T>(attempt: () => Promise<T>, detailsLike?: string): Promise<T>;
  /** Rows of a directory table (optionally `WHERE` a condition with `?` placeholders). */
  count(table: string, where?: string, params?: unknown[]): Promise<number>;
  close(): Promise<void>;
}

/** A backend to run a server on; `start()` resolves null when Postgres is absent (skipped loudly outside CI). */
export interface AuditBackend {
  name: "SQLite" | "Postgres";
  start(options?: { now?: () => number }): Promise<RefusableAuditServer | null>;
}

/** Adds {@link RefusableAuditServer.whileRefused} to a backend's switches. */
function withRefusal(server: Omit<RefusableAuditServer, "whileRefused" | "api">): RefusableAuditServer {
  return {
    ...server,
    api: apiClient(server.server.httpUrl),
    async whileRefused(attempt, detailsLike) {
      await server.refuse(detailsLike);
      try {
        return await attempt();
      } finally {
        await server.allow();
      }
    },
  };
}

export const AUDIT_BACKENDS: AuditBackend[] = [
  {
    name: "SQLite",
    async start(options = {}) {
      const server = await startTestServer({ now: options.now });
      const db = new Database(path.join(server.dataDir, "directory.db"));
      db.pragma("busy_timeout = 5000");
      return withRefusal({
        server,
        env: {},
        refuse: async (detailsLike) => {
          const when = detailsLike ? ` WHEN NEW.details LIKE '${detailsLike.replaceAll("'", "''")}'` : "";
          db.exec(`CREATE TRIGGER refuse_org_audit BEFORE INSERT ON org_audit_entries${when} BEGIN SELECT RAISE(ABORT, 'audit refused'); END`);
        },
        allow: async () => {
          db.exec("DROP TRIGGER IF EXISTS refuse_org_audit");
        },
        count: async (table, where, params = []) => Number((db.prepare(`SELECT count(*) AS n FROM ${table}${where ? ` WHERE ${where}` : ""}`).get(...params) as { n: number }).n),
        close: async () => {
          db.close();
          await server.cleanup();
        },
      });
    },
  },
  {
    name: "Postgres",
    async start(options = {}) {
      const databaseUrl = await requirePostgres();
      if (!databaseUrl) return null;
      const schema = `parley_refuse_${randomBytes(5).toString("hex")}`;
      const admin = new pg.Client({ connectionString: databaseUrl });
      await admin.connect();
      await admin.query(`CREATE SCHEMA "${schema}"`);
      await admin.query(`SET search_path TO "${schema}"`);
      const url = new URL(databaseUrl);
      url.searchParams.set("options", `-c search_path=${schema}`);
      const env = { DATABASE_URL: url.toString() };
      const server = await startTestServer({ env, now: options.now });
      await admin.query("CREATE FUNCTION refuse_org_audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$");
      return withRefusal({
        server,
        env,
        refuse: async (detailsLike) => {
          const when = detailsLike ? ` WHEN (NEW.details LIKE '${detailsLike.replaceAll("'", "''")}')` : "";
          await admin.query(`CREATE TRIGGER refuse_org_audit BEFORE INSERT ON org_audit_entries FOR EACH ROW${when} EXECUTE FUNCTION refuse_org_audit()`);
        },
        allow: async () => {
          await admin.query("DROP TRIGGER IF EXISTS refuse_org_audit ON org_audit_entries");
        },
        count: async (table, where, params = []) => {
          let i = 0;
          const numbered = (where ?? "").replace(/\?/g, () => `$${++i}`);
          const result = await admin.query(`SELECT count(*) AS n FROM ${table}${where ? ` WHERE ${numbered}` : ""}`, params);
          return Number(result.rows[0].n);
        },
        close: async () => {
          await server.cleanup();
          await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
          await admin.end();
        },
      });
    },
  },
];

/**
 * One server on `backend` for the tests of the enclosing describe block: started before them,
 * stopped after. The getter answers null when the backend is absent (the tests then skip).
 */
export function serverPerSuite(backend: AuditBackend): () => RefusableAuditServer | null {
  let running: RefusableAuditServer | null = null;
  beforeAll(async () => {
    running = await backend.start();
  }, 60_000);
  afterAll(async () => {
    await running?.allow().catch(() => {});
    await running?.close();
  });
  return () => running;
}
