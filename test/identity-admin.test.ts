// Identity administration: members and their removal, organisations that require two-factor,
// operator support access (read-only, time-limited, with a reason, visible to the customer),
// password re-hashing when the argon2 parameters change, and CORS preflight.

import { execFile } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import * as OTPAuth from "otpauth";
import { afterEach, describe, expect, it } from "vitest";
import { CloseCode, ErrorCode } from "../protocol/index.ts";
import { parseArgon2Hash } from "../server/auth/passwords.ts";
import { apiClient } from "./helpers/http-client.ts";
import { RawClient } from "./helpers/raw-client.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { confirmedSignUp, joinOrganisation } from "./helpers/sign-up.ts";

const PASSWORD = "violet-harbour-tractor-91!";
const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), "../bin/parley.js");
const run = promisify(execFile);

let server: TestServer | null = null;
afterEach(async () => {
  await server?.cleanup();
  server = null;
});

async function setup(env: Record<string, string> = {}) {
  server = await startTestServer({ env: { PARLEY_ALLOWED_ORIGINS: "https://app.example", ...env } });
  const api = apiClient(server.httpUrl);
  const signUp = async (email: string, organisation: string) => {
    const response = await confirmedSignUp(api, { email, password: PASSWORD, name: email.split("@")[0], organisation });
    expect(response.status).toBe(201);
    return response.body as { accessToken: string; user: { id: string }; organisation: { id: string } };
  };
  return { server, api, signUp };
}

describe("identity administration", () => {
  it("adds a member, and removing them closes their sockets at once", async () => {
    const { api, signUp, server } = await setup();
    const owner = await signUp("olivia@acme.example", "Acme");
    const colleague = await signUp("carl@acme.example", "Carl's own");
    await joinOrganisation(api, { orgId: owner.organisation.id, adminToken: owner.accessToken }, { email: "carl@acme.example", token: colleague.accessToken });
    const login = await api("POST", "/v1/auth/login", { body: { email: "carl@acme.example", password: PASSWORD, organisation: owner.organisation.id } });
    expect(login.status).toBe(200);
    const members = await api("GET", `/v1/organisations/${owner.organisation.id}/members`, { token: owner.accessToken });
    expect((members.body.items as unknown[]).length).toBe(2);
    // A member is not an admin.
    const asMember = await api("POST", `/v1/organisations/${owner.organisation.id}/api-keys`, {
      token: login.body.accessToken as string,
      body: { name: "x", scopes: ["conversations:read"] },
    });
    expect(asMember.body.error?.code).toBe(ErrorCode.InsufficientRole);
    const socket = await RawClient.authenticated(server.url, login.body.accessToken as string);
    await api("DELETE", `/v1/organisations/${owner.organisation.id}/members/${colleague.user.id}`, { token: owner.accessToken });
    expect(await socket.closed(1000)).toBe(CloseCode.Forbidden);
    expect((await api("GET", "/v1/me", { token: login.body.accessToken as string })).status).toBe(401);
    // The last owner stays.
    const self = await api("DELETE", `/v1/organisations/${owner.organisation.id}/members/${owner.user.id}`, { token: owner.accessToken });
    expect(self.status).toBe(400);
  });

  it("lets members of an organisation that requires two-factor do nothing but enrol", async () => {
    const { api, signUp, server } = await setup();
    const admin = await signUp("ada@strict.example", "Strict");
    expect((await api("PATCH", `/v1/organisations/${admin.organisation.id}`, { token: admin.accessToken, body: { require2fa: true } })).body.error?.code).toBe(
      ErrorCode.TwoFactorEnrolmentRequired,
    );
    const enrol = await api("POST", "/v1/auth/2fa/enrol", { token: admin.accessToken });
    const totp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(enrol.body.secret as string) });
    expect((await api("POST", "/v1/auth/2fa/verify", { token: admin.accessToken, body: { code: totp.generate() } })).status).toBe(200);
    expect((await api("PATCH", `/v1/organisations/${admin.organisation.id}`, { token: admin.accessToken, body: { require2fa: true } })).status).toBe(200);

    const benOwn = await signUp("ben@strict.example", "Ben's");
    await joinOrganisation(api, { orgId: admin.organisation.id, adminToken: admin.accessToken }, { email: "ben@strict.example", token: benOwn.accessToken });
    const ben = await api("POST", "/v1/auth/login", { body: { email: "ben@strict.example", password: PASSWORD, organisation: admin.organisation.id } });
    const token = ben.body.accessToken as string;
    expect((await api("GET", "/v1/conversations", { token })).body.error?.code).toBe(ErrorCode.TwoFactorEnrolmentRequired);
    expect((await api("GET", "/v1/me", { token })).status).toBe(200);
    const socket = await RawClient.connect(server.url);
    socket.control({ type: "auth", token, protocol: 1 });
    expect(await socket.waitForControl("error")).toMatchObject({ code: ErrorCode.TwoFactorEnrolmentRequired });
    const benEnrol = await api("POST", "/v1/auth/2fa/enrol", { token });
    const benTotp = new OTPAuth.TOTP({ secret: OTPAuth.Secret.fromBase32(benEnrol.body.secret as string) });
    expect((await api("POST", "/v1/auth/2fa/verify", { token, body: { code: benTotp.generate() } })).status).toBe(200);
    expect((await api("GET", "/v1/conversations", { token })).status).toBe(200);
  });

  it("gives support read-only, time-limited, recorded access that the customer can see and that ends on revoke", async () => {
    const { api, signUp, server } = await setup();
    const owner = await signUp("sue@customer.example", "Customer");
    const created = await api("POST", "/v1/conversations", { token: owner.accessToken, body: { title: "Help needed" } });
    const conversation = created.body.id as string;
    const refused = await run(process.execPath, [BIN, "support", "grant", "--data-dir", server.dataDir, "--operator", "pat", "--conversation", conversation, "--reason", "short"]).catch(
      (error: { code: number; stderr: string }) => error,
    );
    expect((refused as { code: number }).code).toBe(2);
    const { stdout, stderr } = await run(process.execPath, [
      BIN,
      "support",
      "grant",
      "--data-dir",
      server.dataDir,
      "--operator",
      "pat",
      "--conversation",
      conversation,
      "--reason",
      "Customer reported messages not arriving (case 1234)",
      "--ttl",
      "30m",
    ]);
    const grantId = /grant (sup_\w+)/.exec(stderr)?.[1];
    const socket = await RawClient.authenticated(server.url, stdout.trim());
    socket.control({ type: "join", conversation });
    expect(await socket.waitForControl("joined")).toMatchObject({ role: "observer" });
    socket.doc(conversation, { type: "update", update: new Uint8Array([1, 1, 1, 0, 4, 1, 5, 110, 111, 116, 101, 115, 1, 120, 0]) });
    expect(await socket.waitForControl("error", (m) => m.request === "write")).toMatchObject({ code: ErrorCode.ReadOnly });
    const visible = await api("GET", `/v1/conversations/${conversation}/support-access`, { token: owner.accessToken });
    expect(visible.body.items).toEqual([expect.objectContaining({ id: grantId, operator: "pat", reason: expect.stringContaining("case 1234") })]);
    await run(process.execPath, [BIN, "support", "revoke", "--data-dir", server.dataDir, "--grant", grantId ?? ""]);
    expect(await socket.closed(5000)).toBe(CloseCode.Forbidden);
    // Three runs of the CLI (each a fresh Node process loading TypeScript) take a while on a busy machine.
  }, 120_000);

  it("re-hashes a password at sign-in when the argon2 parameters change", async () => {
    const first = await setup();
    await first.signUp("rita@rehash.example", "Rehash");
    const before = await first.server.server.identity.services.directory.getUserByEmail("rita@rehash.example");
    expect(parseArgon2Hash(before?.passwordHash ?? "").timeCost).toBe(2);
    const dataDir = first.server.dataDir;
    await first.server.stop();
    server = await startTestServer({ dataDir, env: { PARLEY_ARGON2_TIME_COST: "3" } });
    const api = apiClient(server.httpUrl);
    expect((await api("POST", "/v1/auth/login", { body: { email: "rita@rehash.example", password: PASSWORD } })).status).toBe(200);
    const after = await server.server.identity.services.directory.getUserByEmail("rita@rehash.example");
    expect(parseArgon2Hash(after?.passwordHash ?? "").timeCost).toBe(3);
    await first.server.cleanup();
  });

  it("answers CORS preflight for allowed origins only", async () => {
    const { server } = await setup();
    const preflight = (origin: string) =>
      fetch(`${server.httpUrl}/v1/conversations`, { method: "OPTIONS", headers: { origin, "access-control-request-method": "POST" } });
    const allowed = await preflight("https://app.example");
    expect(allowed.status).toBe(204);
    expect(allowed.headers.get("access-control-allow-origin")).toBe("https://app.example");
    expect((await preflight("https://evil.example")).status).toBe(403);
  });
});
