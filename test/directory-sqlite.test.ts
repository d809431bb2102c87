// The embedded directory: the shared Directory contract on a SQLite file (a second handle is a
// second worker thread on the same file, as a second process would be), plus what only this
// backend promises: files from before the schema was versioned are adopted with their data, and
// calls fail as unavailable, never hang, once its worker is gone.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, describe, expect, it } from "vitest";
import type { DirectoryHandle } from "../server/directory/directory.ts";
import { DIRECTORY_SCHEMA } from "../server/directory/directory-schema.ts";
import { openDirectory } from "../server/directory/open-directory.ts";
import { openSqliteDirectory } from "../server/directory/sqlite/sqlite-directory.ts";
import { runDirectoryContract } from "./directory-contract.ts";

runDirectoryContract("sqlite", async () => {
  const dir = await mkdtemp(join(tmpdir(), "parley-directory-"));
  const handles: DirectoryHandle[] = [];
  return {
    async open() {
      const handle = await openSqliteDirectory(join(dir, "directory.db"));
      handles.push(handle);
      return handle;
    },
    async cleanup() {
      await Promise.all(handles.map((h) => h.close()));
      await rm(dir, { recursive: true, force: true });
    },
  };
});

/** The directory's tables as the first release wrote them, before the schema had a version. */
const UNVERSIONED_SCHEMA = `
CREATE TABLE organisations (id TEXT PRIMARY KEY, name TEXT NOT NULL, created_at INTEGER NOT NULL,
  require_2fa INTEGER NOT NULL DEFAULT 0, ip_allowlist TEXT NOT NULL DEFAULT '[]');
CREATE TABLE users (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT NOT NULL, password_hash TEXT,
  totp_sealed BLOB, totp_enabled INTEGER NOT NULL DEFAULT 0, totp_last_step INTEGER, created_at INTEGER NOT NULL);
CREATE TABLE memberships (org_id TEXT NOT NULL REFERENCES organisations(id), user_id TEXT NOT NULL REFERENCES users(id),
  role TEXT NOT NULL, created_at INTEGER NOT NULL, PRIMARY KEY (org_id, user_id));
CREATE INDEX memberships_by_user ON memberships(user_id);
CREATE TABLE conversations (id TEXT PRIMARY KEY, org_id TEXT NOT NULL REFERENCES organisations(id), title TEXT NOT NULL,
  external_ref TEXT, status TEXT NOT NULL, created_at INTEGER NOT NULL, created_by TEXT NOT NULL);
CREATE INDEX conversations_by_org ON conversations(org_id, created_at);
CREATE INDEX conversations_by_ref ON conversations(org_id, external_ref);
CREATE TABLE conversation_orgs (conversation_id TEXT NOT NULL REFERENCES conversations(id), org_id TEXT NOT NULL REFERENCES organisations(id),
  role TEXT NOT NULL, added_at INTEGER NOT NULL, PRIMARY KEY (conversation_id, org_id));
CREATE TABLE conversation_people (conversation_id TEXT NOT NULL REFERENCES conversations(id), user_id TEXT NOT NULL REFERENCES users(id),
  role TEXT NOT NULL, added_at INTEGER NOT NULL, PRIMARY KEY (conversation_id, user_id));
CREATE TABLE invitations (id TEXT PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, conversation_id TEXT NOT NULL REFERENCES conversations(id),
  email TEXT NOT NULL, role TEXT NOT NULL, invited_by_org TEXT NOT NULL, invited_by TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER, user_id TEXT, device_hash TEXT);
INSERT INTO organisations (id, name, created_at, require_2fa) VALUES ('org-old', 'Old', 1, 1), ('org-supp', 'Supplier', 1, 0);
INSERT INTO users (id, email, name, created_at, totp_enabled) VALUES ('u-old', 'old@x.example', 'Old', 1, 1), ('u-sup', 'sup@x.example', 'Sup', 1, 0);
INSERT INTO memberships VALUES ('org-old', 'u-old', 'owner', 1), ('org-supp', 'u-sup', 'owner', 1);
INSERT INTO conversations VALUES ('c-old', 'org-old', 'Kept', NULL, 'open', 2, 'u-old');
INSERT INTO conversation_orgs VALUES ('c-old', 'org-supp', 'observer', 2);
`;

describe("SQLite directory", () => {
  const dirs: string[] = [];
  const handles: DirectoryHandle[] = [];

  async function tempDir(): Promise<string> {
    const dir = await mkdtemp(join(tmpdir(), "parley-directory-"));
    dirs.push(dir);
    return dir;
  }

  afterEach(async () => {
    await Promise.all(handles.splice(0).map((h) => h.close()));
    await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
  });

  it("is what openDirectory picks without a database URL, as directory.db in the data directory", async () => {
    const dataDir = await tempDir();
    const handle = await openDirectory({ dataDir, databaseUrl: null });
    handles.push(handle);
    await handle.directory.createOrganisationWithOwner({ id: "o", name: "O" }, { id: "u", email: "u@x.example", name: "U", passwordHash: "h" }, 1);
    const db = new Database(join(dataDir, "directory.db"), { readonly: true });
    try {
      expect(db.prepare("SELECT version FROM directory_schema_version").all()).toEqual([{ version: DIRECTORY_SCHEMA.migrations.length }]);
      expect(db.prepare("SELECT id FROM organisations").all()).toEqual([{ id: "o" }]);
    } finally {
      db.close();
    }
  });

  it("adopts a file written before the schema was versioned, keeping its data and its foreign keys", async () => {
    const path = join(await tempDir(), "directory.db");
    const old = new Database(path);
    old.exec(UNVERSIONED_SCHEMA);
    old.close();

    const handle = await openSqliteDirectory(path);
    handles.push(handle);
    const d = handle.directory;
    expect(await d.getOrganisation("org-old")).toMatchObject({ require2fa: true });
    expect((await d.getUser("u-old"))?.totpEnabled).toBe(true);
    expect(await d.accessRole("c-old", { orgId: "org-old", userId: "u-old" })).toBe("writer");
    expect(await d.accessRole("c-old", { orgId: "org-supp", userId: "u-sup" })).toBe("observer");
    // Tables the first release lacked now exist.
    await d.insertRefreshToken({ tokenHash: "t", familyId: "f", userId: "u-old", orgId: "org-old", expiresAt: 10 }, 1);
    await handle.close();
    handles.splice(handles.indexOf(handle), 1);

    const db = new Database(path, { readonly: true });
    try {
      const references = db.prepare("SELECT \"table\" FROM pragma_foreign_key_list('conversation_orgs')").all();
      expect(references).toContainEqual({ table: "conversation_records" });
      expect(db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'conversations'").all()).toEqual([]);
      expect(db.prepare("PRAGMA foreign_key_check").all()).toEqual([]);
    } finally {
      db.close();
    }
  });

  it("refuses a file from a newer Parley rather than guess at its layout", async () => {
    const path = join(await tempDir(), "directory.db");
    await (await openSqliteDirectory(path)).close();
    const db = new Database(path);
    db.exec("UPDATE directory_schema_version SET version = 99");
    db.close();
    await expect(openSqliteDirectory(path)).rejects.toThrow(/directory schema version 99 is newer/);
  });

  it("fails calls as unavailable, never hangs, once closed", async () => {
    const handle = await openSqliteDirectory(join(await tempDir(), "directory.db"));
    await handle.close();
    expect(handle.alive()).toBe(false);
    await expect(handle.directory.getUser("u")).rejects.toMatchObject({ name: "DirectoryError", code: "unavailable" });
  });
});
