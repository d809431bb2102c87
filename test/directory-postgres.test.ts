// The shared directory: the Directory contract on Postgres (a second handle is a second node's
// pool on the same schema, so the races in the contract are races between nodes), plus what only
// this backend promises: nodes starting together migrate once, it lives beside the log store in
// one schema, it is what openDirectory picks given a database URL, and a database that cannot be
// reached is reported as unavailable. Every case works in its own random schema, dropped afterwards.

import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import pg from "pg";
import { afterEach, describe, expect, it } from "vitest";
import { DirectoryError, type DirectoryHandle } from "../server/directory/directory.ts";
import { DIRECTORY_SCHEMA } from "../server/directory/directory-schema.ts";
import { openDirectory } from "../server/directory/open-directory.ts";
import { openPostgresDirectory } from "../server/directory/postgres/postgres-directory.ts";
import { openPostgresStore } from "../server/store/postgres/postgres-store.ts";
import { runDirectoryContract } from "./directory-contract.ts";
import { requirePostgres } from "./helpers/services.ts";
import { CONTRACT_AUDIT_KEY, CONTRACT_MASTER_KEYS } from "./store-contract.ts";

const databaseUrl = await requirePostgres();

function randomSchema(): string {
  return `parley_dir_${randomBytes(6).toString("hex")}`;
}

async function admin<R extends pg.QueryResultRow>(url: string, sql: string): Promise<R[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<R>(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A port on which nothing listens (taken from the OS, then released). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

if (!databaseUrl) {
  describe("Postgres directory", () => {
    it.skip("needs a reachable Postgres (see the warning printed above)", () => {});
  });
} else {
  const url = databaseUrl;

  runDirectoryContract("postgres", async () => {
    const schema = randomSchema();
    const handles: DirectoryHandle[] = [];
    return {
      async open() {
        const handle = await openPostgresDirectory({ connectionString: url, schema, poolSize: 4 });
        handles.push(handle);
        return handle;
      },
      async cleanup() {
        await Promise.all(handles.map((h) => h.close()));
        await admin(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      },
    };
  });

  describe("Postgres directory", () => {
    const schemas: string[] = [];
    const closers: (() => Promise<void>)[] = [];

    function freshSchema(): string {
      const schema = randomSchema();
      schemas.push(schema);
      return schema;
    }

    afterEach(async () => {
      await Promise.all(closers.splice(0).map((close) => close()));
      for (const schema of schemas.splice(0)) await admin(url, `DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
    });

    it("migrates once when several nodes start together", async () => {
      const schema = freshSchema();
      const nodes = await Promise.all([1, 2, 3, 4].map(() => openPostgresDirectory({ connectionString: url, schema, poolSize: 2 })));
      for (const node of nodes) closers.push(() => node.close());
      expect(await admin(url, `SELECT version FROM "${schema}".directory_schema_version`)).toEqual([{ version: DIRECTORY_SCHEMA.migrations.length }]);
      await nodes[0].directory.createOrganisationWithOwner({ id: "o", name: "O" }, { id: "u", email: "u@x.example", name: "U", passwordHash: "h" }, 1);
      expect(await nodes[3].directory.getMembership("o", "u")).toBe("owner");
    });

    it("shares one schema with the log store, whichever starts first", async () => {
      for (const storeFirst of [true, false]) {
        const schema = freshSchema();
        const openStore = () => openPostgresStore({ connectionString: url, auditKey: CONTRACT_AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS, schema, poolSize: 2 });
        const openDir = () => openPostgresDirectory({ connectionString: url, schema, poolSize: 2 });
        const [store, directory] = storeFirst
          ? [await openStore(), await openDir()]
          : await Promise.all([openDir(), openStore()]).then(([d, s]) => [s, d] as const);
        closers.push(() => store.close(), () => directory.close());
        await directory.directory.createOrganisationWithOwner({ id: "o", name: "O" }, { id: "u", email: "u@x.example", name: "U", passwordHash: "h" }, 1);
        await directory.directory.createConversation({ id: "c", orgId: "o", title: "t", externalRef: null, createdBy: "u" }, [], 2);
        await store.appendBatch([{ conversation: "c", kind: "update", actor: { user: "u", org: "o", session: "s" }, payload: new Uint8Array([0, 0]) }]);
        expect(await directory.directory.accessRole("c", { orgId: "o", userId: "u" })).toBe("writer");
        const tables = await admin<{ table_name: string }>(
          url,
          `SELECT table_name FROM information_schema.tables WHERE table_schema = '${schema}' AND table_name IN ('conversations', 'conversation_records', 'schema_version', 'directory_schema_version') ORDER BY 1`,
        );
        expect(tables.map((t) => t.table_name)).toEqual(["conversation_records", "conversations", "directory_schema_version", "schema_version"]);
      }
    });

    it("is what openDirectory picks given a database URL, working in the URL's search_path", async () => {
      const schema = freshSchema();
      await admin(url, `CREATE SCHEMA "${schema}"`);
      const withPath = new URL(url);
      withPath.searchParams.set("options", `-c search_path=${schema}`);
      // Destructured as the CLI commands do: close must not depend on being called as a method.
      const { directory, close } = await openDirectory({ dataDir: "/nonexistent", databaseUrl: withPath.toString() });
      closers.push(close);
      await directory.createOrganisationWithOwner({ id: "o", name: "O" }, { id: "u", email: "u@x.example", name: "U", passwordHash: "h" }, 1);
      expect(await admin(url, `SELECT id FROM "${schema}".organisations`)).toEqual([{ id: "o" }]);
      await close();
    });

    it("fails to open, as unavailable, where nothing listens", async () => {
      const dead = new URL(url);
      dead.hostname = "127.0.0.1";
      dead.port = String(await freePort());
      const opening = openPostgresDirectory({ connectionString: dead.toString(), schema: freshSchema(), connectTimeoutMs: 1000 });
      await expect(opening).rejects.toBeInstanceOf(DirectoryError);
      await expect(opening).rejects.toMatchObject({ code: "unavailable" });
    });

    it("lets in-flight calls finish when closing, then refuses new ones as unavailable", async () => {
      const handle = await openPostgresDirectory({ connectionString: url, schema: freshSchema(), poolSize: 2 });
      const inFlight = handle.directory.createOrganisationWithOwner({ id: "o", name: "O" }, { id: "u", email: "u@x.example", name: "U", passwordHash: "h" }, 1);
      const closing = handle.close();
      await expect(inFlight).resolves.toBeUndefined();
      await closing;
      expect(handle.alive()).toBe(false);
      await expect(handle.directory.getUser("u")).rejects.toMatchObject({ name: "DirectoryError", code: "unavailable" });
    });

    it("refuses a schema name that is not a plain identifier", async () => {
      await expect(openPostgresDirectory({ connectionString: url, schema: 'x"; DROP TABLE users; --' })).rejects.toMatchObject({ code: "invalid" });
    });
  });
}
