// Deletion reaches every copy Parley keeps. An organisation that deletes its side loses its copies
// of the conversation's partner events and webhook deliveries at once and receives nothing more
// about it; a destroyed conversation leaves no plaintext in any file of the data directory (WAL
// files included) and no row naming it in any table, except the deletion ledger and the audit
// chains, which record that it was destroyed.

import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import WebSocket from "ws";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { apiClient } from "./helpers/http-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { signUp, type SignedUp } from "./helpers/sign-up.ts";
import { requirePostgres } from "./helpers/services.ts";
import { startWebhookReceiver, type WebhookReceiver } from "./helpers/webhook-receiver.ts";

/** The backend a run uses: the embedded files, or a Postgres schema of its own. */
interface Backend {
  name: "sqlite" | "postgres";
  /** Settings for a fresh server (a new, empty Postgres schema each time). */
  env(): Promise<Record<string, string>>;
  /** Every table of the backend's database as [table, rows as text]. */
  tables(dataDir: string): Promise<{ where: string; table: string; columns: string[]; count(column: string, like: string): Promise<number> }[]>;
}

let server: TestServer | null = null;
let receiver: WebhookReceiver | null = null;
afterEach(async () => {
  await server?.cleanup();
  await receiver?.close();
  server = null;
  receiver = null;
});

/** A /yjs socket that has had its first message (it is joined); a close before it fails the test. */
async function openYjs(url: string): Promise<WebSocket> {
  const socket = new WebSocket(url);
  await new Promise<void>((resolve, reject) => {
    socket.once("message", () => resolve());
    socket.once("close", (code) => reject(new Error(`${url}: closed (${code}) before its first message`)));
    socket.once("error", reject);
  });
  return socket;
}

/** A marker no other test writes, so finding it anywhere means this conversation left a copy. */
const marker = (what: string) => `${what}-${randomUUID()}`;

async function setup(backend: Backend) {
  server = await startTestServer({
    env: {
      PARLEY_WEBHOOK_ALLOW_PRIVATE: "true",
      PARLEY_WEBHOOK_RETRY_BASE_MS: "50",
      PARLEY_WEBHOOK_RETRY_MAX_DELAY_MS: "1000",
      PARLEY_EVENT_DEBOUNCE_MS: "20",
      ...(await backend.env()),
    },
  });
  const test = server;
  const api = apiClient(test.httpUrl);
  receiver = await startWebhookReceiver();
  receiver.mode = "fail";
  const helpdesk = await signUp(api, `hilde-${randomUUID()}@helpdesk.example`, "Helpdesk");
  const supplier = await signUp(api, `sven-${randomUUID()}@supplier.example`, "Supplier");
  // The supplier's helpdesk integration: a webhook that keeps failing (attempts with response excerpts).
  const hook = await api("POST", `/v1/organisations/${supplier.orgId}/webhooks`, { token: supplier.token, body: { url: receiver.url } });
  expect(hook.status).toBe(201);
  receiver.secret = hook.body.secret as string;
  const endpointId = hook.body.id as string;
  const texts = { title: marker("title"), externalRef: marker("REF"), helpdesk: marker("helpdesk-says"), supplier: marker("supplier-says") };
  const started = await api("POST", "/v1/conversations", {
    token: helpdesk.token,
    body: {
      title: texts.title,
      externalRef: texts.externalRef,
      participants: [{ organisation: supplier.orgId }],
      // An invitation mail names the conversation: the outbox keeps a copy.
      invitations: [{ email: `guest-${randomUUID()}@elsewhere.example` }],
    },
  });
  expect(started.status).toBe(201);
  const id = started.body.id as string;
  const post = async (who: SignedUp, text: string) =>
    expect((await api("POST", `/v1/conversations/${id}/messages`, { token: who.token, body: { text } })).status).toBe(201);
  await post(helpdesk, texts.helpdesk);
  await post(supplier, texts.supplier);
  const eventsOf = async (org: string) => {
    const read = await test.server.events.store.read(org, 0, 10_000);
    return read.status === "ok" ? read.events.filter((e) => e.json.includes(id)) : [];
  };
  // Both messages reached the supplier's stream, and its webhook failed on them (attempts stored).
  await expect.poll(async () => (await eventsOf(supplier.orgId)).filter((e) => e.type === "message.created").length, { timeout: 15_000 }).toBe(2);
  await expect.poll(async () => (await test.server.webhooks.store.listAttempts(endpointId, 100)).length, { timeout: 15_000 }).toBeGreaterThan(0);
  // An event given up on after the retry window, as the dispatcher parks it.
  const [first] = await eventsOf(supplier.orgId);
  const attempt = { endpointId, at: Date.now(), eventId: first.id, cursor: first.cursor, attempt: 99, ok: false, status: 503, error: "HTTP 503", durationMs: 1, excerpt: "unavailable" };
  const endpoint = await test.server.webhooks.store.getEndpoint(endpointId);
  if (!endpoint) throw new Error("endpoint vanished");
  await test.server.webhooks.store.recordOutcome({
    endpointId,
    attempt,
    state: endpoint.delivery,
    park: { id: `dl_${randomUUID()}`, endpointId, cursor: first.cursor, eventId: first.id, eventType: first.type, eventJson: first.json, attempts: 99, parkedAt: Date.now(), lastError: "HTTP 503" },
  });
  expect((await test.server.webhooks.store.listDeadLetters(endpointId, 100)).length).toBe(1);
  return { test, api, helpdesk, supplier, id, texts, endpointId, eventsOf, post };
}

/** Every file below `dir`, recursively. */
async function filesBelow(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await filesBelow(full)));
    else found.push(full);
  }
  return found;
}

/** Tables that record THAT something was destroyed, by design (SECURITY.md › Deletion): they keep the id, nothing else. */
const RECORDS_OF_DESTRUCTION = new Set(["deletion_ledger", "destroyed_conversations", "org_audit_entries", "org_audit_heads", "audit_checkpoints"]);


const sqlite: Backend = {
  name: "sqlite",
  env: async () => ({}),
  async tables(dataDir) {
    const found: Awaited<ReturnType<Backend["tables"]>> = [];
    for (const file of (await filesBelow(dataDir)).filter((f) => f.endsWith(".db"))) {
      const db = new Database(file, { readonly: true });
      const names = db.prepare<[], { name: string }>("SELECT name FROM sqlite_master WHERE type = 'table'").all();
      for (const { name } of names) {
        const columns = db.prepare<[], { name: string }>(`SELECT name FROM pragma_table_info('${name}')`).all().map((c) => c.name);
        found.push({
          where: path.relative(dataDir, file),
          table: name,
          columns,
          count: async (column, like) => (db.prepare(`SELECT COUNT(*) AS n FROM "${name}" WHERE CAST("${column}" AS TEXT) LIKE ?`).get(like) as { n: number }).n,
        });
      }
      closers.push(() => db.close());
    }
    return found;
  },
};

let databaseUrl: string | null = null;
const schemas: string[] = [];
let schema = "";
async function adminQuery(sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: databaseUrl ?? "" });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}
const postgres: Backend = {
  name: "postgres",
  env: async () => {
    schema = `parley_copies_${randomUUID().replaceAll("-", "").slice(0, 10)}`;
    schemas.push(schema);
    await adminQuery(`CREATE SCHEMA "${schema}"`);
    const url = new URL(databaseUrl ?? "");
    url.searchParams.set("options", `-c search_path=${schema}`);
    return { DATABASE_URL: url.toString() };
  },
  async tables() {
    const client = new pg.Client({ connectionString: databaseUrl ?? "" });
    await client.connect();
    closers.push(() => client.end());
    const { rows } = await client.query<{ table_name: string; column_name: string }>(
      "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = $1 ORDER BY table_name",
      [schema],
    );
    const byTable = new Map<string, string[]>();
    for (const row of rows) byTable.set(row.table_name, [...(byTable.get(row.table_name) ?? []), row.column_name]);
    return [...byTable].map(([table, columns]) => ({
      where: `postgres ${schema}`,
      table,
      columns,
      count: async (column: string, like: string) =>
        Number((await client.query(`SELECT COUNT(*) AS n FROM "${schema}"."${table}" WHERE CAST("${column}" AS TEXT) LIKE $1`, [like])).rows[0].n),
    }));
  },
};

const closers: (() => unknown)[] = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

beforeAll(async () => {
  databaseUrl = await requirePostgres();
});
afterAll(async () => {
  for (const name of schemas) await adminQuery(`DROP SCHEMA IF EXISTS "${name}" CASCADE`);
});

describe.each([sqlite, postgres])("on $name", (backend) => {
  // Postgres absent outside CI: requirePostgres() said so loudly; these runs are skipped.
  const skip = () => backend.name === "postgres" && !databaseUrl;
  it("an organisation deleting its side loses its event and webhook copies at once and receives nothing more", async (context) => {
    if (skip()) return context.skip();
    const { test, api, helpdesk, supplier, id, endpointId, eventsOf, post } = await setup(backend);
    const before = (await eventsOf(helpdesk.orgId)).length;
    const eventIds = new Set((await eventsOf(supplier.orgId)).map((e) => e.id));
    // A y-websocket app of the supplier's, open on the conversation with a person's token.
    const yjs = await openYjs(`${test.yjsUrl}/${id}?token=${supplier.token}`);
    const yjsClosed = new Promise<number>((resolve) => yjs.once("close", (code) => resolve(code)));
    expect((await api("DELETE", `/v1/conversations/${id}`, { token: supplier.token })).status).toBe(200);
    expect(await yjsClosed).toBe(4403);
    expect(await eventsOf(supplier.orgId)).toEqual([]);
    expect(await test.server.webhooks.store.listDeadLetters(endpointId, 100)).toEqual([]);
    const attempts = await test.server.webhooks.store.listAttempts(endpointId, 1000);
    expect(attempts.filter((a) => eventIds.has(a.eventId))).toEqual([]);
    // The helpdesk keeps its copies and goes on; the supplier hears of none of it.
    await post(helpdesk, "after the supplier left");
    await expect.poll(async () => (await eventsOf(helpdesk.orgId)).length, { timeout: 15_000 }).toBeGreaterThan(before);
    expect(await eventsOf(supplier.orgId)).toEqual([]);
  });

  it("a destroyed conversation leaves no plaintext in any file and no row naming it outside the records of its destruction", async (context) => {
    if (skip()) return context.skip();
    const { test, api, helpdesk, supplier, id, texts } = await setup(backend);
    const dataDir = test.dataDir;
    expect((await api("DELETE", `/v1/conversations/${id}`, { token: supplier.token })).status).toBe(200);
    expect((await api("DELETE", `/v1/conversations/${id}`, { token: helpdesk.token })).body).toMatchObject({ destroyed: true });
    const plaintexts = Object.values(texts);
    const leaks: string[] = [];
    for (const file of await filesBelow(dataDir)) {
      const bytes = await readFile(file);
      for (const text of plaintexts) if (bytes.includes(Buffer.from(text))) leaks.push(`${path.relative(dataDir, file)} holds ${text}`);
    }
    for (const table of await backend.tables(dataDir)) {
      if (RECORDS_OF_DESTRUCTION.has(table.table)) continue;
      for (const column of table.columns) {
        for (const needle of [id, ...plaintexts]) {
          const n = await table.count(column, `%${needle}%`);
          if (n > 0) leaks.push(`${table.where} ${table.table}.${column} holds ${needle === id ? "the conversation id" : needle} (${n} rows)`);
        }
      }
    }
    expect(leaks).toEqual([]);
  });
});
