// Point-in-time recovery of a Postgres deployment, done for real: a private Postgres cluster with
// WAL archiving (wal_level=replica, archive_mode=on, archive_command into a folder), a real Parley
// server on it, a pg_basebackup, then writes, a named restore point (pg_create_restore_point),
// more writes, and the cluster stopped for good. The base backup is restored with restore_command
// and recovery_target_name, promoted, and a Parley server on the recovered database serves exactly
// the state at the restore point (what was written after it is gone, what was written between the
// base backup and it is there), `parley ledger replay` and `parley audit verify --all` pass, and
// the recovered deployment takes new writes. README › Backup and restore documents the settings.

import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { apiClient } from "./helpers/http-client.ts";
import { runParley } from "./helpers/parley-cli.ts";
import { PrivateCluster, type PostgresServerTools, privateWorkFolder, requirePostgresServerTools, runServerTool, serverFolder } from "./helpers/private-postgres.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { confirmedSignUp, TEST_PASSWORD } from "./helpers/sign-up.ts";
import { waitUntil } from "./helpers/wait.ts";

const tools = await requirePostgresServerTools("the point-in-time recovery test");
const SCHEMA = "parley";
const RESTORE_POINT = "parley-pitr-target";

type Api = ReturnType<typeof apiClient>;

async function query<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

async function signIn(api: Api, email: string): Promise<{ status: number; token: string }> {
  const response = await api("POST", "/v1/auth/login", { body: { email, password: TEST_PASSWORD } });
  return { status: response.status, token: response.body.accessToken as string };
}

async function post(api: Api, token: string, conversation: string, text: string): Promise<void> {
  expect((await api("POST", `/v1/conversations/${conversation}/messages`, { token, body: { text } })).status).toBe(201);
}

async function messages(api: Api, token: string, conversation: string): Promise<string[]> {
  const read = await api("GET", `/v1/conversations/${conversation}/messages`, { token });
  expect(read.status).toBe(200);
  return (read.body.items as { text: string }[]).map((m) => m.text);
}

describe.runIf(tools)("point-in-time recovery of a Postgres deployment", () => {
  const serverTools = tools as PostgresServerTools;
  let work: string;
  let archive: string;
  let keysDir: string;
  let source: PrivateCluster;
  let recovered: PrivateCluster | null = null;
  let parley: TestServer | null = null;
  const nodeDirs: string[] = [];

  beforeAll(async () => {
    work = await privateWorkFolder(serverTools, "parley-pitr-");
    archive = await serverFolder(serverTools, work, "wal-archive");
    keysDir = await mkdtemp(path.join(tmpdir(), "parley-pitr-keys-"));
    source = await PrivateCluster.create(serverTools, work, "source", {
      wal_level: "replica",
      archive_mode: "on",
      archive_command: `'test ! -f ${archive}/%f && cp %p ${archive}/%f'`,
      max_wal_senders: "4",
      // The test proves WAL archiving and replay, not durability against power loss.
      fsync: "off",
      shared_buffers: "16MB",
    });
    await source.start();
    await query(source.url(), `CREATE SCHEMA ${SCHEMA}`);
  }, 300_000);

  afterAll(async () => {
    await parley?.cleanup().catch(() => undefined);
    await recovered?.stopQuietly();
    await source?.stopQuietly();
    if (work) await rm(work, { recursive: true, force: true });
    if (keysDir) await rm(keysDir, { recursive: true, force: true });
    for (const dir of nodeDirs) await rm(dir, { recursive: true, force: true });
  });

  /** A Parley node on `databaseUrl` with the deployment's key files and a data directory of its own. */
  async function startNode(databaseUrl: string): Promise<TestServer> {
    const dataDir = await mkdtemp(path.join(tmpdir(), "parley-pitr-node-"));
    nodeDirs.push(dataDir);
    return startTestServer({ dataDir, env: { DATABASE_URL: databaseUrl, PARLEY_KEYS_DIR: keysDir } });
  }

  it("recovers to a named restore point: a server on the recovered database serves exactly the state at the target, and its audit chains verify", async () => {
    parley = await startNode(source.url(SCHEMA));
    let api = apiClient(parley.httpUrl);
    const owner = await confirmedSignUp(api, { email: "ada@pitr.example", organisation: "Recovery BV" });
    const token = owner.body.accessToken as string;
    const started = await api("POST", "/v1/conversations", { token, body: { title: "Boiler" } });
    expect(started.status).toBe(201);
    const conversation = started.body.id as string;
    await post(api, token, conversation, "before the base backup");

    // The base backup, while the server runs.
    const base = path.join(work, "base");
    await runServerTool(serverTools, "pg_basebackup", ["-D", base, "-h", "127.0.0.1", "-p", String(source.port), "-U", "postgres", "--checkpoint=fast", "--wal-method=stream", "--no-sync"]);

    // Written after the base backup and before the target: only the archived WAL holds these.
    await post(api, token, conversation, "after the base backup");
    const second = await confirmedSignUp(api, { email: "grace@pitr.example", organisation: "Before Target BV" });
    expect(second.status).toBe(201);
    const atTarget = await messages(api, token, conversation);
    expect(atTarget).toEqual(["before the base backup", "after the base backup"]);
    const [point] = await query<{ lsn: string; wal: string }>(source.url(), "SELECT lsn::text, pg_walfile_name(lsn) AS wal FROM pg_create_restore_point($1) AS lsn", [RESTORE_POINT]);

    // After the target: none of this may come back.
    await post(api, token, conversation, "after the target");
    const late = await confirmedSignUp(api, { email: "late@pitr.example", organisation: "After Target BV" });
    expect(late.status).toBe(201);
    const lateConversation = await api("POST", "/v1/conversations", { token, body: { title: "After the target" } });
    expect(lateConversation.status).toBe(201);
    expect(await messages(api, token, conversation)).toHaveLength(3);

    // The segment holding the restore point is archived once it is switched out.
    await query(source.url(), "SELECT pg_switch_wal()");
    await waitUntil(async () => (await readdir(archive)).includes(point?.wal as string), { timeout: 60_000, what: "the restore point's WAL segment archived" });

    // The disaster: the deployment stops, its database is lost.
    await parley.stop();
    parley = null;
    await source.stop();

    // Recovery: the base backup, the archive's WAL replayed up to the restore point, then promoted.
    recovered = await PrivateCluster.onDataDir(serverTools, work, base, {
      restore_command: `'cp ${archive}/%f %p'`,
      recovery_target_name: `'${RESTORE_POINT}'`,
      recovery_target_action: "'promote'",
      archive_mode: "off",
    });
    await recovered.touch("recovery.signal");
    await recovered.start();
    const recoveredCluster = recovered;
    await waitUntil(async () => (await query<{ r: boolean }>(recoveredCluster.url(), "SELECT pg_is_in_recovery() AS r"))[0]?.r === false, { timeout: 120_000, what: "the recovered cluster promoted" });
    // Postgres's own account: WAL came from the archive, and replay stopped at the restore point.
    const serverLog = await readFile(`${base}.log`, "utf8");
    expect(serverLog).toMatch(/restored log file "[0-9A-F]{24}" from archive/);
    expect(serverLog).toContain(`recovery stopping at restore point "${RESTORE_POINT}"`);

    // After a PITR restore, the ledger replay (README), then a server on the recovered database.
    const cli = { DATABASE_URL: recovered.url(SCHEMA), PARLEY_KEYS_DIR: keysDir, PARLEY_DATA_DIR: await mkdtemp(path.join(tmpdir(), "parley-pitr-cli-")) };
    nodeDirs.push(cli.PARLEY_DATA_DIR);
    const replay = await runParley(["ledger", "replay"], cli);
    expect(replay.code, replay.stdout + replay.stderr).toBe(0);

    parley = await startNode(recovered.url(SCHEMA));
    api = apiClient(parley.httpUrl);
    const ada = await signIn(api, "ada@pitr.example");
    expect(ada.status).toBe(200);
    expect(await messages(api, ada.token, conversation)).toEqual(atTarget);
    expect((await signIn(api, "grace@pitr.example")).status).toBe(200);
    expect((await signIn(api, "late@pitr.example")).status).toBe(401);
    expect((await api("GET", `/v1/conversations/${lateConversation.body.id as string}/messages`, { token: ada.token })).status).toBe(404);
    const verified = await api("GET", `/v1/organisations/${(owner.body.organisation as { id: string }).id}/audit/verify`, { token: ada.token });
    expect(verified.body.ok).toBe(true);

    // The recovered deployment goes on.
    await post(api, ada.token, conversation, "after the recovery");
    expect((await messages(api, ada.token, conversation)).at(-1)).toBe("after the recovery");
    await parley.stop();
    parley = null;

    // Every conversation's and organisation's chain, checked by the operator's own command.
    const audit = await runParley(["audit", "verify", "--all"], cli);
    expect(audit.code, audit.stdout + audit.stderr).toBe(0);
    expect(audit.stdout).toMatch(/chain\(s\) checked, 0 broken/);
  }, 600_000);
});
