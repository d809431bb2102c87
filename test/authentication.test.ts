// The one authentication path (server/http/principal.ts): every kind of credential becomes one
// typed principal, each entry point admits the kinds it serves (HTTP: people and API keys;
// sockets: all), and a refusal reads the same wherever the credential was shown. Real keys, a
// real SQLite directory, real tokens.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ErrorCode } from "../protocol/index.ts";
import { issueAccessToken, issueSupportToken, mintToken } from "../server/auth/tokens.ts";
import { loadOrCreateKeys, type ServerKeys } from "../server/crypto/keys.ts";
import type { DirectoryHandle } from "../server/directory/directory.ts";
import type { SupportGrant } from "../server/directory/directory-types.ts";
import { openSqliteDirectory } from "../server/directory/sqlite/sqlite-directory.ts";
import { authenticateCredential, HTTP_PRINCIPALS, type PrincipalDeps, SOCKET_PRINCIPALS, secretHash } from "../server/http/principal.ts";
import { systemClock } from "../server/platform/clock.ts";

const settings = { issuer: "parley", audience: "parley" };
const T0 = Date.now();
const IP = "203.0.113.7";

let dir: string;
let keys: ServerKeys;
let handle: DirectoryHandle;
let deps: PrincipalDeps;
const supportUses: { grant: string; ip: string }[] = [];
const keyUses: string[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "parley-authentication-"));
  keys = await loadOrCreateKeys(join(dir, "keys"));
  handle = await openSqliteDirectory(join(dir, "directory.db"));
  const d = handle.directory;
  await d.createOrganisationWithOwner({ id: "org-help", name: "Helpdesk" }, { id: "u-alice", email: "alice@help.example", name: "Alice", passwordHash: "h" }, T0);
  await d.createOrganisationWithOwner({ id: "org-strict", name: "Strict" }, { id: "u-sam", email: "sam@strict.example", name: "Sam", passwordHash: "h" }, T0);
  await d.updateOrganisation("org-strict", { require2fa: true, ipAllowlist: ["198.51.100.0/24"] });
  await d.createConversation({ id: "c-1", orgId: "org-help", title: "Broken pump", externalRef: null, createdBy: "u-alice" }, [], T0);
  await d.createApiKey({ id: "k1", orgId: "org-help", name: "CRM", scopes: ["conversations:read"], secretHash: secretHash("s3cret"), createdBy: "u-alice" }, T0);
  deps = {
    keys,
    tokens: settings,
    directory: d,
    recordApiKeyUse: async (_org, id) => void keyUses.push(id),
    recordSupportUse: async (grant: SupportGrant, ip: string) => void supportUses.push({ grant: grant.id, ip }),
    now: Date.now,
  };
});

afterAll(async () => {
  await handle?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Signs in `user` of `org`: a refresh family and its access token. */
async function signedIn(user: string, org: string, family: string): Promise<string> {
  await handle.directory.insertRefreshToken({ tokenHash: secretHash(family), familyId: family, userId: user, orgId: org, expiresAt: T0 + 3_600_000 }, T0);
  return issueAccessToken(keys, settings, { user, org, sessionFamily: family, ttlSeconds: 600 }, systemClock);
}

/** The refusal `attempt` ends with, as code and message. */
async function refusal(attempt: Promise<unknown>): Promise<{ code: unknown; message: string }> {
  const error = (await attempt.then(
    () => null,
    (e: unknown) => e,
  )) as { code?: unknown; message?: string } | null;
  expect(error, "expected a refusal").not.toBeNull();
  return { code: error?.code, message: error?.message ?? "" };
}

describe("one authentication path for HTTP, the event stream and sockets", () => {
  it("turns an API key into the same apiKey principal for HTTP and sockets, and refuses a wrong secret alike", async () => {
    for (const admit of [HTTP_PRINCIPALS, SOCKET_PRINCIPALS]) {
      const principal = await authenticateCredential("pk_k1.s3cret", IP, deps, admit);
      expect(principal).toEqual({ kind: "apiKey", keyId: "k1", orgId: "org-help", scopes: ["conversations:read"] });
      expect(await refusal(authenticateCredential("pk_k1.wrong", IP, deps, admit))).toEqual({
        code: ErrorCode.InvalidCredentials,
        message: "missing or invalid credentials",
      });
    }
    expect(keyUses).toEqual(["k1", "k1"]);
  });

  it("turns a sign-in token into a person principal, and refuses it everywhere once signed out", async () => {
    const token = await signedIn("u-alice", "org-help", "fam-alice");
    for (const admit of [HTTP_PRINCIPALS, SOCKET_PRINCIPALS]) {
      const principal = await authenticateCredential(token, IP, deps, admit);
      expect(principal).toMatchObject({ kind: "user", userId: "u-alice", orgId: "org-help", role: "owner", missingFactor: null, mustEnrolTwoFactor: false });
    }
    await handle.directory.revokeFamily("fam-alice", "u-alice", "signed out", T0);
    for (const admit of [HTTP_PRINCIPALS, SOCKET_PRINCIPALS]) {
      expect(await refusal(authenticateCredential(token, IP, deps, admit))).toEqual({ code: ErrorCode.InvalidToken, message: "this session was signed out" });
    }
  });

  it("names the missing second factor and holds the organisation's IP allowlist for every entry point", async () => {
    const token = await signedIn("u-sam", "org-strict", "fam-sam");
    const inside = await authenticateCredential(token, "198.51.100.9", deps, SOCKET_PRINCIPALS);
    expect(inside).toMatchObject({ kind: "user", missingFactor: "two-factor", mustEnrolTwoFactor: true });
    for (const admit of [HTTP_PRINCIPALS, SOCKET_PRINCIPALS]) {
      expect((await refusal(authenticateCredential(token, IP, deps, admit))).code).toBe(ErrorCode.IpNotAllowed);
    }
  });

  it("admits a token that lists its conversations on sockets only, with the HTTP API's refusal before anything is recorded", async () => {
    const dev = await mintToken(keys, settings, { user: "dev", org: "org-dev", conversations: { "c-1": "writer" }, ttlSeconds: 600 }, systemClock);
    expect(await authenticateCredential(dev, IP, deps, SOCKET_PRINCIPALS)).toMatchObject({ kind: "conversationToken" });
    const refused = await refusal(authenticateCredential(dev, IP, deps, HTTP_PRINCIPALS));
    expect(refused.code).toBe(ErrorCode.InvalidToken);
    expect(refused.message).toContain("it opens sockets only");

    const grant = { id: "g1", operator: "op", conversationId: "c-1", reason: "ticket 7", grantedAt: T0, expiresAt: Date.now() + 600_000 };
    await handle.directory.recordSupportGrant(grant);
    const support = await issueSupportToken(keys, settings, { ...grant, ttlSeconds: 600 }, systemClock);
    expect((await refusal(authenticateCredential(support, IP, deps, HTTP_PRINCIPALS))).message).toBe(refused.message);
    expect(supportUses).toEqual([]);
    expect(await authenticateCredential(support, IP, deps, SOCKET_PRINCIPALS)).toMatchObject({ kind: "support", grant: { id: "g1" } });
    expect(supportUses).toEqual([{ grant: "g1", ip: IP }]);
    await handle.directory.revokeSupportGrant("g1", Date.now());
    expect(await refusal(authenticateCredential(support, IP, deps, SOCKET_PRINCIPALS))).toEqual({
      code: ErrorCode.InvalidToken,
      message: "this support grant was revoked or has expired",
    });
  });
});
