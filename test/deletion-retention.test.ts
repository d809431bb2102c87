// Deletion and retention with a real server, real sockets and real files: an organisation deletes
// its side of a shared conversation (it loses access, the others keep theirs), the conversation is
// destroyed once every party has (unless under legal hold), the deletion ledger destroys again
// what a restored copy of the data brings back, a person is erased with every chain still
// verifying, and the retention sweep deletes inactive conversations by itself under a moved clock.

import { execFile } from "node:child_process";
import { cp, mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { OrgChainVerifier } from "../server/directory/org-chain.ts";
import { DELETION_LEDGER_FILE } from "../server/lifecycle/deletion-ledger.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { confirmedSignUp, joinOrganisation, signIn } from "./helpers/sign-up.ts";
import { waitUntil } from "./helpers/wait.ts";

const PASSWORD = "violet-harbour-tractor-91!";
const DAY = 24 * 3_600_000;
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../bin/parley.js");
const run = promisify(execFile);

let server: TestServer | null = null;
const scratch: string[] = [];
afterEach(async () => {
  await server?.cleanup();
  server = null;
  for (const dir of scratch.splice(0)) await rm(dir, { recursive: true, force: true });
});

type Account = { accessToken: string; user: { id: string }; organisation: { id: string } };

async function setup(options: { env?: Record<string, string>; now?: () => number } = {}) {
  server = await startTestServer(options);
  const test = server;
  const api = apiClient(test.httpUrl);
  const signUp = async (email: string, organisation: string): Promise<Account> => {
    const response = await confirmedSignUp(api, { email, password: PASSWORD, name: `Name of ${email.split("@")[0]}`, organisation });
    expect(response.status).toBe(201);
    return response.body as unknown as Account;
  };
  const helpdesk = await signUp("hilde@helpdesk.example", "Helpdesk");
  const supplier = await signUp("sven@supplier.example", "Supplier");
  /** A conversation between the helpdesk and the supplier, with one message from each. */
  const shared = async (): Promise<string> => {
    const started = await api("POST", "/v1/conversations", {
      token: helpdesk.accessToken,
      body: { title: "Broken pump", participants: [{ organisation: supplier.organisation.id }] },
    });
    expect(started.status).toBe(201);
    const id = started.body.id as string;
    expect((await api("POST", `/v1/conversations/${id}/messages`, { token: helpdesk.accessToken, body: { text: "it leaks" } })).status).toBe(201);
    expect((await api("POST", `/v1/conversations/${id}/messages`, { token: supplier.accessToken, body: { text: "on my way" } })).status).toBe(201);
    return id;
  };
  /** A member (not admin) of the organisation, signed in for it. */
  const member = async (org: Account, email: string): Promise<string> => {
    const own = await signUp(email, `${email} own`);
    await joinOrganisation(api, { orgId: org.organisation.id, adminToken: org.accessToken }, { email, token: own.accessToken });
    const login = await api("POST", "/v1/auth/login", { body: { email, password: PASSWORD, organisation: org.organisation.id } });
    return login.body.accessToken as string;
  };
  /** True when neither the store nor the directory knows the conversation any more. */
  const goneEverywhere = async (id: string) => {
    const entries = await test.server.store.readEntries(id, 0, 10);
    const record = await test.server.identity.services.directory.getConversation(id);
    return entries.length === 0 && record === null;
  };
  return { test, api, signUp, helpdesk, supplier, shared, member, goneEverywhere };
}

async function joined(url: string, token: string, conversation: string): Promise<RawClient> {
  const socket = await RawClient.authenticated(url, token);
  socket.control({ type: "join", conversation });
  await socket.waitForControl("joined");
  return socket;
}

describe("deleting a side of a shared conversation", () => {
  it("takes access from the deleting organisation only: its socket leaves, the other keeps reading live", async () => {
    const { test, api, helpdesk, supplier, shared, goneEverywhere } = await setup();
    const id = await shared();
    const supplierSocket = await joined(test.url, supplier.accessToken, id);
    const helpdeskSocket = await joined(test.url, helpdesk.accessToken, id);

    const deleted = await api("DELETE", `/v1/conversations/${id}`, { token: supplier.accessToken });
    expect(deleted.status).toBe(200);
    expect(deleted.body).toEqual({ destroyed: false, remainingParties: [helpdesk.organisation.id], legalHolds: [] });
    expect(await supplierSocket.waitForControl("left", (m) => m.conversation === id)).toMatchObject({ code: ErrorCode.Forbidden });

    expect((await api("GET", `/v1/conversations/${id}`, { token: supplier.accessToken })).status).toBe(404);
    expect((await api("GET", "/v1/conversations", { token: supplier.accessToken })).body.items).toEqual([]);
    expect((await api("DELETE", `/v1/conversations/${id}`, { token: supplier.accessToken })).status).toBe(404);
    // The helpdesk keeps reading, writing, and its socket stays in the conversation.
    const messages = await api("GET", `/v1/conversations/${id}/messages`, { token: helpdesk.accessToken });
    expect((messages.body.items as { text: string }[]).map((m) => m.text)).toEqual(["it leaks", "on my way"]);
    expect((await api("POST", `/v1/conversations/${id}/messages`, { token: helpdesk.accessToken, body: { text: "still here" } })).status).toBe(201);
    expect(helpdeskSocket.closeCode).toBeNull();
    expect(await goneEverywhere(id)).toBe(false);
    supplierSocket.close();
    helpdeskSocket.close();
  });

  it("destroys the conversation once both have deleted: no rows in the store, no record in the directory, a ledger line, audit entries", async () => {
    const { test, api, helpdesk, supplier, shared, goneEverywhere } = await setup();
    const id = await shared();
    const partnerEventsOf = async (org: string) => {
      const read = await test.server.events.store.read(org, 0, 1000);
      return read.status === "ok" ? read.events.filter((e) => e.json.includes(id)) : [];
    };
    expect((await partnerEventsOf(supplier.organisation.id)).length).toBeGreaterThan(0);
    const helpdeskSocket = await joined(test.url, helpdesk.accessToken, id);
    expect((await api("DELETE", `/v1/conversations/${id}`, { token: helpdesk.accessToken })).body).toMatchObject({ destroyed: false });
    await helpdeskSocket.waitForControl("left", (m) => m.conversation === id);
    const last = await api("DELETE", `/v1/conversations/${id}`, { token: supplier.accessToken });
    expect(last.body).toEqual({ destroyed: true, remainingParties: [], legalHolds: [] });
    expect(await goneEverywhere(id)).toBe(true);
    // Its partner events left every organisation's stream.
    expect(await partnerEventsOf(supplier.organisation.id)).toEqual([]);
    expect(await partnerEventsOf(helpdesk.organisation.id)).toEqual([]);
    const ledger = await readFile(path.join(test.dataDir, DELETION_LEDGER_FILE), "utf8");
    expect(ledger).toContain(id);
    for (const org of [helpdesk.organisation.id, supplier.organisation.id]) {
      const entries = await test.server.audit.log.readOrgAuditEntries(org, 0, 1000);
      const mine = entries.filter((e) => e.target === id && e.action === "conversation.deleted");
      // The destruction's start (with the shared ledger line) and its end (with the record's removal).
      expect(mine.map((e) => e.details.scope)).toEqual(["side", "destroying", "destroyed"]);
    }
    // A socket cannot join it again and nobody can write to it.
    const again = await RawClient.authenticated(test.url, helpdesk.accessToken);
    again.control({ type: "join", conversation: id });
    await again.waitFor((f) => f.kind === "control" && (f.message as { type: string }).type === "error");
    again.close();
    helpdeskSocket.close();
  });

  it("refuses non-admins, other organisations, API keys and unknown ids with clear errors, changing nothing", async () => {
    const { api, helpdesk, supplier, shared, signUp, member, goneEverywhere } = await setup();
    const id = await shared();
    const outsider = await signUp("olga@outsider.example", "Outsider");
    const plainMember = await member(supplier, "max@supplier.example");
    const key = await api("POST", `/v1/organisations/${supplier.organisation.id}/api-keys`, {
      token: supplier.accessToken,
      body: { name: "ticketing", scopes: ["conversations:write"] },
    });
    const apiKey = key.body.key as string;

    const asMember = await api("DELETE", `/v1/conversations/${id}`, { token: plainMember });
    expect([asMember.status, asMember.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    const asKey = await api("DELETE", `/v1/conversations/${id}`, { token: apiKey });
    expect([asKey.status, asKey.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    const asOutsider = await api("DELETE", `/v1/conversations/${id}`, { token: outsider.accessToken });
    expect([asOutsider.status, asOutsider.body.error?.code]).toEqual([404, ErrorCode.NotFound]);
    const unknown = await api("DELETE", "/v1/conversations/cnv_doesnotexist", { token: helpdesk.accessToken });
    expect([unknown.status, unknown.body.error?.code]).toEqual([404, ErrorCode.NotFound]);
    const holdByOutsider = await api("PUT", `/v1/conversations/${id}/legal-hold`, { token: outsider.accessToken, body: { reason: "x" } });
    expect(holdByOutsider.status).toBe(404);
    const holdByMember = await api("PUT", `/v1/conversations/${id}/legal-hold`, { token: plainMember, body: { reason: "x" } });
    expect(holdByMember.body.error?.code).toBe(ErrorCode.InsufficientRole);
    const emptyReason = await api("PUT", `/v1/conversations/${id}/legal-hold`, { token: supplier.accessToken, body: { reason: "" } });
    expect(emptyReason.body.error?.code).toBe(ErrorCode.InvalidRequest);
    const liftNone = await api("DELETE", `/v1/conversations/${id}/legal-hold`, { token: supplier.accessToken });
    expect(liftNone.status).toBe(404);

    // Nothing changed: both still read it, nothing is held, nothing destroyed.
    expect((await api("GET", `/v1/conversations/${id}`, { token: helpdesk.accessToken })).status).toBe(200);
    expect((await api("GET", `/v1/conversations/${id}`, { token: supplier.accessToken })).status).toBe(200);
    expect((await api("GET", `/v1/conversations/${id}/legal-hold`, { token: supplier.accessToken })).body.items).toEqual([]);
    expect(await goneEverywhere(id)).toBe(false);
  });
});

describe("legal hold", () => {
  it("keeps a conversation every party deleted until the holding party lifts its hold", async () => {
    const { test, api, helpdesk, supplier, shared, goneEverywhere } = await setup();
    const id = await shared();
    const held = await api("PUT", `/v1/conversations/${id}/legal-hold`, { token: supplier.accessToken, body: { reason: "warranty dispute" } });
    expect(held.status).toBe(200);
    expect(held.body.items).toMatchObject([{ orgId: supplier.organisation.id, reason: "warranty dispute", setBy: `user:${supplier.user.id}` }]);
    // The helpdesk cannot lift the supplier's hold.
    expect((await api("DELETE", `/v1/conversations/${id}/legal-hold`, { token: helpdesk.accessToken })).status).toBe(404);

    await api("DELETE", `/v1/conversations/${id}`, { token: helpdesk.accessToken });
    const both = await api("DELETE", `/v1/conversations/${id}`, { token: supplier.accessToken });
    expect(both.body).toEqual({ destroyed: false, remainingParties: [], legalHolds: [supplier.organisation.id] });
    expect(await goneEverywhere(id)).toBe(false);
    // Not even the retention sweep destroys it while held.
    expect((await test.server.lifecycle.sweep()).destroyed).toEqual([]);

    const lifted = await api("DELETE", `/v1/conversations/${id}/legal-hold`, { token: supplier.accessToken });
    expect(lifted.body).toEqual({ destroyed: true, remainingParties: [], legalHolds: [] });
    expect(await goneEverywhere(id)).toBe(true);
    const actions = (await test.server.audit.log.readOrgAuditEntries(supplier.organisation.id, 0, 1000)).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(["legal-hold.placed", "legal-hold.lifted", "conversation.deleted"]));
  });
});

describe("deletion ledger replay", () => {
  it("destroys again a conversation brought back by restoring the data files from before its destruction", async () => {
    const { test, api, helpdesk, supplier, shared, goneEverywhere } = await setup();
    const id = await shared();
    const kept = await shared();
    // A "backup": the database files as they are now, conversation included.
    await test.stop();
    const backup = await mkdtemp(path.join(tmpdir(), "parley-copy-"));
    scratch.push(backup);
    const databases = (await readdir(test.dataDir)).filter((f) => /\.db(-wal|-shm)?$/.test(f));
    for (const file of databases) await cp(path.join(test.dataDir, file), path.join(backup, file));
    await test.restart();

    await api("DELETE", `/v1/conversations/${id}`, { token: helpdesk.accessToken });
    expect((await api("DELETE", `/v1/conversations/${id}`, { token: supplier.accessToken })).body.destroyed).toBe(true);
    await test.stop();
    // The "restore": the old database files back, the ledger left as it is.
    for (const file of await readdir(test.dataDir)) if (/\.db(-wal|-shm)?$/.test(file)) await rm(path.join(test.dataDir, file));
    for (const file of databases) await cp(path.join(backup, file), path.join(test.dataDir, file));
    await test.restart();

    expect(await goneEverywhere(id)).toBe(true);
    expect((await api("GET", `/v1/conversations/${id}`, { token: helpdesk.accessToken })).status).toBe(404);
    // What was not deleted came back with the restore and stays.
    expect((await api("GET", `/v1/conversations/${kept}/messages`, { token: supplier.accessToken })).body.items).toHaveLength(2);
  });

  it("refuses to start over a damaged ledger", async () => {
    const { test, api, helpdesk, supplier, shared } = await setup();
    const id = await shared();
    await api("DELETE", `/v1/conversations/${id}`, { token: helpdesk.accessToken });
    await api("DELETE", `/v1/conversations/${id}`, { token: supplier.accessToken });
    await test.stop();
    const file = path.join(test.dataDir, DELETION_LEDGER_FILE);
    const { writeFile } = await import("node:fs/promises");
    await writeFile(file, (await readFile(file, "utf8")).replace(id, "cnv_somethingelse"));
    await expect(test.restart()).rejects.toThrow(/deletion ledger .* line 1/);
  });
});

describe("deleting a person", () => {
  it("erases their personal data from the directory file, ends their sessions, and every chain still verifies", async () => {
    const { test, api, helpdesk, supplier, shared, signUp, member } = await setup();
    const id = await shared();
    const victim = await signUp("vera.unique@private.example", "Vera Unique Org");
    // A plain member of the same organisation may not delete a colleague.
    const colleague = await member(victim, "carl.colleague@private.example");
    const byMember = await api("DELETE", `/v1/users/${victim.user.id}`, { token: colleague });
    expect([byMember.status, byMember.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    // The last owner of an organisation with other members is refused (ownership passes on first)…
    const lastOwner = await api("DELETE", `/v1/users/${victim.user.id}`, { token: victim.accessToken });
    expect([lastOwner.status, lastOwner.body.error?.message]).toEqual([400, expect.stringContaining("last owner")]);
    // …and an owner may not delete the account of a member who belongs elsewhere too (their
    // account is theirs), only take them out of the organisation.
    const members = (await api("GET", `/v1/organisations/${victim.organisation.id}/members`, { token: victim.accessToken })).body.items as { userId: string; email: string }[];
    const carl = members.find((m) => m.email === "carl.colleague@private.example")?.userId ?? "";
    const elsewhere = await api("DELETE", `/v1/users/${carl}`, { token: victim.accessToken });
    expect([elsewhere.status, elsewhere.body.error?.code]).toEqual([403, ErrorCode.InsufficientRole]);
    expect((await api("DELETE", `/v1/organisations/${victim.organisation.id}/members/${carl}`, { token: victim.accessToken })).status).toBe(204);
    expect((await api("GET", "/v1/me", { token: colleague })).status).toBe(401);
    await api("POST", `/v1/conversations/${id}/participants`, { token: helpdesk.accessToken, body: { organisation: victim.organisation.id } });
    expect((await api("POST", `/v1/conversations/${id}/messages`, { token: victim.accessToken, body: { text: "from vera" } })).status).toBe(201);
    const socket = await RawClient.authenticated(test.url, victim.accessToken);

    // Someone else's admin may not; they themself may.
    expect((await api("DELETE", `/v1/users/${victim.user.id}`, { token: supplier.accessToken })).status).toBe(404);
    expect((await api("DELETE", "/v1/users/usr_nobody", { token: supplier.accessToken })).status).toBe(404);
    expect((await api("DELETE", `/v1/users/${victim.user.id}`, { token: victim.accessToken })).status).toBe(204);
    expect(await socket.closed(5000)).toBe(4403);
    expect((await api("GET", "/v1/me", { token: victim.accessToken })).status).toBe(401);
    const login = await api("POST", "/v1/auth/login", { body: { email: "vera.unique@private.example", password: PASSWORD } });
    expect(login.status).toBe(401);

    // Audit entries still name the same (now meaningless) id, and every chain verifies.
    const entries = await test.server.store.readEntries(id, 0, 100);
    expect(entries.map((e) => e.user)).toContain(victim.user.id);
    expect((await verifyConversation(test.server.store, id, test.server.keys.auditKey)).ok).toBe(true);
    for (const org of [helpdesk.organisation.id, victim.organisation.id]) {
      const verifier = new OrgChainVerifier(org);
      for (const entry of await test.server.audit.log.readOrgAuditEntries(org, 0, 1000)) verifier.push(entry);
      expect(verifier.result().ok).toBe(true);
    }
    const erasedEvents = await test.server.audit.log.readOrgAuditEntries(victim.organisation.id, 0, 1000);
    expect(erasedEvents.some((e) => e.action === "person.deleted" && e.target === victim.user.id)).toBe(true);

    // No personal data left in the directory's files, raw bytes included.
    await test.stop();
    for (const file of (await readdir(test.dataDir)).filter((f) => f.startsWith("directory.db"))) {
      const bytes = await readFile(path.join(test.dataDir, file));
      expect(bytes.includes("vera.unique"), file).toBe(false);
      expect(bytes.includes("Name of vera"), file).toBe(false);
    }
  });
});

describe("deleting a person from the command line", () => {
  it("erases them through `parley user delete` next to a running server, and refuses unknown people", async () => {
    const { test, api, signUp } = await setup();
    const leaver = await signUp("lena.leaver@gone.example", "Lena Ltd");
    const cli = (...args: string[]) => run(process.execPath, [BIN, "user", "delete", "--data-dir", test.dataDir, ...args]);
    const unknown = await cli("--user", "usr_nobody", "--operator", "ops.jan").catch((error: { code: number; stderr: string }) => error);
    expect(unknown).toMatchObject({ code: 2, stderr: expect.stringContaining("no such person") });
    const { stdout } = await cli("--user", leaver.user.id, "--operator", "ops.jan");
    expect(stdout).toContain(`erased ${leaver.user.id}`);
    expect((await api("GET", "/v1/me", { token: leaver.accessToken })).status).toBe(401);
    expect(await test.server.identity.services.directory.getUserByEmail("lena.leaver@gone.example")).toBeNull();
    const events = await test.server.audit.log.readOrgAuditEntries(leaver.organisation.id, 0, 100);
    expect(events.find((e) => e.action === "person.deleted")).toMatchObject({ actor: "operator:ops.jan", target: leaver.user.id });
    // The CLI's ledger line chains onto the server's: the ledger still opens at the next start.
    await test.restart();
    expect(test.server.lifecycle.ledger.has("person", leaver.user.id)).toBe(true);
  });
});

describe("retention", () => {
  it("deletes each party's side after its own retention, then destroys the conversation, on the server's schedule", async () => {
    let offset = 0;
    const { test, api, helpdesk, supplier, shared, goneEverywhere } = await setup({
      env: { PARLEY_RETENTION_SWEEP_MS: "100" },
      now: () => Date.now() + offset,
    });
    const id = await shared();
    // Out of bounds and by a non-admin: refused.
    const tooShort = await api("PUT", `/v1/organisations/${supplier.organisation.id}/retention`, { token: supplier.accessToken, body: { days: 1 } });
    expect(tooShort.body.error?.code).toBe(ErrorCode.InvalidRequest);
    const otherOrg = await api("PUT", `/v1/organisations/${helpdesk.organisation.id}/retention`, { token: supplier.accessToken, body: { days: 30 } });
    expect(otherOrg.status).toBe(404);
    const set = await api("PUT", `/v1/organisations/${supplier.organisation.id}/retention`, { token: supplier.accessToken, body: { days: 30 } });
    expect(set.body).toMatchObject({ retentionDays: 30 });

    offset = 31 * DAY;
    // A month on the server's clock: the access tokens from the sign-ups have expired.
    const supplierToken = await signIn(api, "sven@supplier.example", PASSWORD);
    const helpdeskToken = await signIn(api, "hilde@helpdesk.example", PASSWORD);
    await waitUntil(async () => (await api("GET", `/v1/conversations/${id}`, { token: supplierToken })).status === 404);
    expect((await api("GET", `/v1/conversations/${id}`, { token: helpdeskToken })).status).toBe(200);
    expect(await goneEverywhere(id)).toBe(false);

    offset = 366 * DAY;
    await waitUntil(() => goneEverywhere(id));
    const actions = (await test.server.audit.log.readOrgAuditEntries(helpdesk.organisation.id, 0, 1000)).filter((e) => e.target === id).map((e) => e.action);
    expect(actions).toContain("retention.destroyed");
  });
});

describe("retention sweep cost", () => {
  it("finds inactive conversations by their stored last activity: no document loaded, recent ones not looked at", async () => {
    let offset = 0;
    const { test, shared } = await setup({ now: () => Date.now() + offset });
    const ids = [await shared(), await shared()];
    const store = test.server.store;
    const loadDocument = store.loadDocument.bind(store);
    let loads = 0;
    store.loadDocument = (conversation) => {
      loads++;
      return loadDocument(conversation);
    };
    try {
      expect(await test.server.lifecycle.sweep()).toEqual({ sidesDeleted: 0, destroyed: [], examined: 0, mailRemoved: 0 });
      const lastActive = await store.lastActivity([...ids, "never-written"]);
      expect([...lastActive.keys()].sort()).toEqual([...ids].sort());
      offset = 8 * DAY; // past the shortest retention anyone may choose, before the default 365 days
      expect(await test.server.lifecycle.sweep()).toEqual({ sidesDeleted: 0, destroyed: [], examined: 2, mailRemoved: 0 });
      expect(loads).toBe(0);
    } finally {
      store.loadDocument = loadDocument;
    }
  });
});

/** Polls until `check` holds (the sweep runs on the server's own schedule). */
