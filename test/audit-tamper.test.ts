// Tampering with a closed store's database file, the way someone with access to the disk could,
// must not go unnoticed: each case edits the SQLite file directly, reopens the store and expects
// verifyConversation to name the first entry that no longer holds.

import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import * as Y from "yjs";
import {
  type ChainFields,
  type ChainHead,
  type ChainVerification,
  canonicalEntry,
  contentHmac,
  entryHash,
  genesisHash,
} from "../server/store/audit-chain.ts";
import { verifyConversation } from "../server/audit/verify-conversation.ts";
import { openSqliteStore } from "../server/store/sqlite/sqlite-store.ts";
import type { EntryRow } from "./helpers/entry-row.ts";
import { alice, appendsOf, bob, CONTRACT_MASTER_KEYS, textUpdates } from "./store-contract.ts";

const AUDIT_KEY = new Uint8Array(32).fill(0x5a);
const CONV = "conv-audited";
const OTHER = "conv-neighbour";
// Layout written by beforeEach: updates 1..40, the snapshot entry 41, updates 42..61.
const SNAPSHOT_SEQ = 41;
const HEAD_SEQ = 61;


let dir: string;
let path: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "parley-audit-"));
  path = join(dir, "parley.db");
  const store = await openSqliteStore({ path, auditKey: AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS });
  const doc = new Y.Doc();
  const neighbour = new Y.Doc();
  const updates = textUpdates(doc, 60);
  for (let i = 0; i < 40; i += 10) {
    const mine = appendsOf(CONV, i % 20 ? bob : alice, updates.slice(i, i + 10));
    await store.appendBatch([...mine, ...appendsOf(OTHER, bob, textUpdates(neighbour, 2))]);
  }
  await store.compact(CONV);
  await store.appendBatch(appendsOf(CONV, alice, updates.slice(40)));
  await store.close();
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Edits the closed database file directly, as someone with disk access could. */
function tamper(edit: (db: Database.Database) => void): void {
  const db = new Database(path);
  try {
    db.transaction(() => edit(db))();
  } finally {
    db.close();
  }
}

async function verify(options: { checkpoints?: ChainHead[] } = {}): Promise<ChainVerification> {
  const store = await openSqliteStore({ path, auditKey: AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS });
  try {
    return await verifyConversation(store, CONV, AUDIT_KEY, { pageSize: 16, ...options });
  } finally {
    await store.close();
  }
}

function row(db: Database.Database, seq: number): EntryRow {
  return db.prepare("SELECT * FROM entries WHERE conversation_id = ? AND seq = ?").get(CONV, seq) as EntryRow;
}

function fieldsOf(r: EntryRow): ChainFields {
  return {
    conversation: r.conversation_id,
    seq: r.seq,
    at: r.at,
    user: r.user_id,
    org: r.org_id,
    session: r.session_id,
    kind: r.kind,
    size: r.size,
    contentHmac: r.content_hmac,
  };
}

/**
 * What someone without the audit key can still do: recompute every hash link from `fromSeq` on
 * (SHA-256 is public) and move the conversation head to match. Content HMACs stay as they are.
 */
function rechain(db: Database.Database, fromSeq: number): void {
  let prev: Uint8Array = fromSeq === 1 ? genesisHash(CONV) : row(db, fromSeq - 1).hash;
  const rows = db.prepare("SELECT * FROM entries WHERE conversation_id = ? AND seq >= ? ORDER BY seq").all(CONV, fromSeq) as EntryRow[];
  const update = db.prepare("UPDATE entries SET prev_hash = ?, hash = ? WHERE conversation_id = ? AND seq = ?");
  let last = rows.length ? rows[rows.length - 1] : row(db, fromSeq - 1);
  for (const r of rows) {
    const hash = entryHash(prev, fieldsOf(r));
    update.run(prev, hash, CONV, r.seq);
    prev = hash;
    last = r;
  }
  db.prepare("UPDATE conversations SET head_seq = ?, head_hash = ? WHERE id = ?").run(last.seq, prev, CONV);
}

/** Moves entries (and their snapshots) at or after `fromSeq` by `delta`, without tripping the primary key. */
function shiftSeqs(db: Database.Database, fromSeq: number, delta: number): void {
  for (const table of ["entries", "snapshots"]) {
    db.prepare(`UPDATE ${table} SET seq = -seq WHERE conversation_id = ? AND seq >= ?`).run(CONV, fromSeq);
    db.prepare(`UPDATE ${table} SET seq = -seq + ? WHERE conversation_id = ? AND seq < 0`).run(delta, CONV);
  }
  db.prepare("UPDATE snapshots SET covers = covers + ? WHERE conversation_id = ? AND covers >= ?").run(delta, CONV, fromSeq - 1);
  db.prepare("UPDATE conversations SET head_seq = head_seq + ? WHERE id = ?").run(delta, CONV);
}

/**
 * Payloads are encrypted at rest with their conversation, kind and seq bound in: an edited, moved
 * or swapped payload no longer decrypts; the store refuses to read it (never garbage) and the
 * verifier names that entry as the first broken one (never a silent pass).
 */
async function expectUndecryptable(seq: number, options: { checkpoints?: ChainHead[] } = {}): Promise<void> {
  await expect(verify(options)).resolves.toMatchObject({ ok: false, seq, reason: expect.stringContaining(`at seq ${seq} `) });
}

function flipByte(bytes: Buffer, index: number): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] ^= 0x01;
  return copy;
}

function headOf(): ChainHead {
  const db = new Database(path, { readonly: true });
  try {
    const r = row(db, HEAD_SEQ);
    return { seq: r.seq, hash: r.hash };
  } finally {
    db.close();
  }
}

describe("audit chain", () => {
  it("verifies an untouched conversation up to its head", async () => {
    const result = await verify();
    expect(result).toMatchObject({ ok: true, entries: HEAD_SEQ, head: { seq: HEAD_SEQ } });
    const store = await openSqliteStore({ path, auditKey: AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS });
    try {
      expect(await verifyConversation(store, OTHER, AUDIT_KEY)).toMatchObject({ ok: true, entries: 8 });
    } finally {
      await store.close();
    }
  });

  it("fails verification under a different audit key", async () => {
    const store = await openSqliteStore({ path, auditKey: AUDIT_KEY, masterKeys: CONTRACT_MASTER_KEYS });
    try {
      expect(await verifyConversation(store, CONV, new Uint8Array(32).fill(1))).toMatchObject({ ok: false, seq: 1 });
    } finally {
      await store.close();
    }
  });

  it("keeps the documented entry encoding stable", () => {
    const fields: ChainFields = {
      conversation: "c",
      seq: 1,
      at: 1700000000000,
      user: "u",
      org: "o",
      session: "s",
      kind: "update",
      size: 3,
      contentHmac: contentHmac(new Uint8Array(16), new Uint8Array([1, 2, 3])),
    };
    const hex = Buffer.from(fields.contentHmac).toString("hex");
    expect(Buffer.from(canonicalEntry(fields)).toString("utf8")).toBe(`[1,"c",1,1700000000000,"u","o","s","update",3,"${hex}"]`);
    const expectedGenesis = createHash("sha256").update("parley/audit/v1/genesis\0c").digest();
    expect(Buffer.from(genesisHash("c")).equals(expectedGenesis)).toBe(true);
    const expectedHash = createHash("sha256")
      .update(Buffer.concat([expectedGenesis, Buffer.from(canonicalEntry(fields))]))
      .digest();
    expect(Buffer.from(entryHash(genesisHash("c"), fields)).equals(expectedHash)).toBe(true);
  });
});

describe("tampering with the database file", () => {
  it("detects an edited payload", async () => {
    tamper((db) => {
      db.prepare("UPDATE entries SET payload = ? WHERE conversation_id = ? AND seq = 10").run(flipByte(row(db, 10).payload!, 5), CONV);
    });
    await expectUndecryptable(10);
  });

  it("detects an edited author", async () => {
    tamper((db) => {
      db.prepare("UPDATE entries SET user_id = 'user-mallory' WHERE conversation_id = ? AND seq = 12").run(CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: 12, reason: expect.stringMatching(/hash does not recompute/) });
  });

  it("detects an edited size", async () => {
    tamper((db) => {
      db.prepare("UPDATE entries SET size = size + 1 WHERE conversation_id = ? AND seq = 3").run(CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: 3 });
  });

  it("detects a deleted entry", async () => {
    tamper((db) => {
      db.prepare("DELETE FROM entries WHERE conversation_id = ? AND seq = 20").run(CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: 20, reason: expect.stringMatching(/seq 20 is missing/) });
  });

  it("detects a deleted first entry", async () => {
    tamper((db) => {
      db.prepare("DELETE FROM entries WHERE conversation_id = ? AND seq = 1").run(CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: 1 });
  });

  it("detects entries cut off the end of the log", async () => {
    tamper((db) => {
      db.prepare("DELETE FROM entries WHERE conversation_id = ? AND seq > 58").run(CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: 59, reason: expect.stringMatching(/head is seq 61/) });
  });

  it("detects two entries swapping places", async () => {
    tamper((db) => {
      const swap = db.prepare("UPDATE entries SET seq = ? WHERE conversation_id = ? AND seq = ?");
      swap.run(-1, CONV, 15);
      swap.run(15, CONV, 16);
      swap.run(16, CONV, -1);
    });
    await expectUndecryptable(15);
  });

  it("detects an inserted entry", async () => {
    tamper((db) => {
      shiftSeqs(db, 30, 1);
      const forged = new Uint8Array([0, 0]); // an empty Yjs update
      const fields: ChainFields = {
        ...fieldsOf(row(db, 29)),
        seq: 30,
        user: "user-mallory",
        size: forged.byteLength,
        contentHmac: contentHmac(new Uint8Array(32), forged), // the audit key is not on disk
      };
      const prev = row(db, 29).hash;
      db.prepare("INSERT INTO entries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)").run(
        CONV,
        30,
        fields.at,
        fields.user,
        fields.org,
        fields.session,
        "update",
        fields.size,
        fields.contentHmac,
        prev,
        entryHash(prev, fields),
        forged,
      );
    });
    await expectUndecryptable(30);
  });

  it("detects an entry moved in from another conversation", async () => {
    tamper((db) => {
      db.prepare("DELETE FROM entries WHERE conversation_id = ? AND seq = 5").run(CONV);
      db.prepare("UPDATE entries SET conversation_id = ? WHERE conversation_id = ? AND seq = 5").run(CONV, OTHER);
    });
    await expectUndecryptable(5);
  });

  it("detects a timestamp moved back", async () => {
    tamper((db) => {
      db.prepare("UPDATE entries SET at = ? WHERE conversation_id = ? AND seq = 25").run(row(db, 24).at - 60_000, CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: 25, reason: expect.stringMatching(/timestamp/) });
  });

  it("detects an edited snapshot state", async () => {
    tamper((db) => {
      const state = db.prepare("SELECT state FROM snapshots WHERE conversation_id = ? AND seq = ?").pluck().get(CONV, SNAPSHOT_SEQ) as Buffer;
      db.prepare("UPDATE snapshots SET state = ? WHERE conversation_id = ? AND seq = ?").run(flipByte(state, state.length - 3), CONV, SNAPSHOT_SEQ);
    });
    await expectUndecryptable(SNAPSHOT_SEQ);
  });

  it("detects a deleted snapshot", async () => {
    tamper((db) => {
      db.prepare("DELETE FROM snapshots WHERE conversation_id = ?").run(CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: SNAPSHOT_SEQ, reason: expect.stringMatching(/snapshot payload is missing/) });
  });

  it("detects a deleted update payload", async () => {
    tamper((db) => {
      db.prepare("UPDATE entries SET payload = NULL WHERE conversation_id = ? AND seq = 50").run(CONV);
    });
    expect(await verify()).toMatchObject({ ok: false, seq: 50, reason: expect.stringMatching(/payload is missing/) });
  });
});

describe("tampering with the chain recomputed, without the audit key", () => {
  it("detects an edited payload", async () => {
    tamper((db) => {
      db.prepare("UPDATE entries SET payload = ? WHERE conversation_id = ? AND seq = 10").run(flipByte(row(db, 10).payload!, 5), CONV);
      rechain(db, 10);
    });
    await expectUndecryptable(10);
  });

  it("detects an edited snapshot state", async () => {
    tamper((db) => {
      const state = db.prepare("SELECT state FROM snapshots WHERE conversation_id = ? AND seq = ?").pluck().get(CONV, SNAPSHOT_SEQ) as Buffer;
      db.prepare("UPDATE snapshots SET state = ? WHERE conversation_id = ? AND seq = ?").run(flipByte(state, 1), CONV, SNAPSHOT_SEQ);
      rechain(db, SNAPSHOT_SEQ);
    });
    await expectUndecryptable(SNAPSHOT_SEQ);
  });

  it("detects a payload swapped with another entry's", async () => {
    tamper((db) => {
      const a = row(db, 7);
      const b = row(db, 8);
      const set = db.prepare("UPDATE entries SET payload = ?, size = ? WHERE conversation_id = ? AND seq = ?");
      set.run(b.payload, b.size, CONV, 7);
      set.run(a.payload, a.size, CONV, 8);
      rechain(db, 7);
    });
    await expectUndecryptable(7);
  });

  // The chain hash is public SHA-256 so anyone can check it; that also lets someone with write
  // access rewrite attribution and re-link the chain. Heads held outside the database
  // (checkpoints) are what catch it, at the first checkpoint after the edit.
  it("detects an edited author only against trusted checkpoints", async () => {
    const trustedHead = headOf();
    const checkpoints = readCheckpoints([10, 20, 30, 40, 50, 60]);
    tamper((db) => {
      db.prepare("UPDATE entries SET user_id = 'user-mallory' WHERE conversation_id = ? AND seq = 12").run(CONV);
      rechain(db, 12);
    });
    expect(await verify()).toMatchObject({ ok: true }); // the limitation, stated
    expect(await verify({ checkpoints: [trustedHead] })).toMatchObject({ ok: false, seq: HEAD_SEQ, reason: expect.stringMatching(/checkpoint/) });
    expect(await verify({ checkpoints })).toMatchObject({ ok: false, seq: 20, reason: expect.stringMatching(/checkpoint/) });
  });

  it("detects a deleted entry against a trusted checkpoint", async () => {
    const trustedHead = headOf();
    tamper((db) => {
      db.prepare("DELETE FROM entries WHERE conversation_id = ? AND seq = 20").run(CONV);
      shiftSeqs(db, 21, -1);
      rechain(db, 20);
    });
    // Encryption at rest binds each payload to its seq, so the shifted entries no longer decrypt.
    await expectUndecryptable(20, { checkpoints: [trustedHead] });
  });

  it("detects a truncated log against a trusted checkpoint", async () => {
    const trustedHead = headOf();
    tamper((db) => {
      db.prepare("DELETE FROM entries WHERE conversation_id = ? AND seq > 55").run(CONV);
      rechain(db, 56);
    });
    expect(await verify()).toMatchObject({ ok: true, head: { seq: 55 } });
    expect(await verify({ checkpoints: [trustedHead] })).toMatchObject({ ok: false, seq: 56, reason: expect.stringMatching(/before trusted checkpoint/) });
  });
});

function readCheckpoints(seqs: number[]): ChainHead[] {
  const db = new Database(path, { readonly: true });
  try {
    return seqs.map((seq) => ({ seq, hash: row(db, seq).hash }));
  } finally {
    db.close();
  }
}
