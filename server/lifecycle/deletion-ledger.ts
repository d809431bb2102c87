// The deletion ledger: an append-only, hash-chained file of everything Parley destroyed (whole
// conversations, erased persons). It lives beside the data, not in it, so restoring a backup of the
// store or the directory does not roll it back; replaying it after a restore destroys again what a
// backup brought back. Each line is one JSON object; each entry's hash covers the previous one, so
// an edited, removed, reordered or truncated line is detected when the file is read.

import { createHash } from "node:crypto";
import { open, readFile } from "node:fs/promises";
import path from "node:path";

/** What was destroyed: a conversation (its data and directory record) or a person's personal data. */
export type DeletionSubject = "conversation" | "person";

/** Why it was destroyed. */
export type DeletionReason = "all-parties-deleted" | "retention" | "person-deleted" | "replay";

/** One ledger line. `hash` = SHA-256 hex of `prev` and the entry's other fields (see entryHash). */
export interface LedgerEntry {
  /** 1, 2, 3…: a removed line leaves a gap. */
  n: number;
  /** Milliseconds since the epoch (UTC) when the destruction was recorded. */
  at: number;
  subject: DeletionSubject;
  id: string;
  reason: DeletionReason;
  /** Hash of the previous entry ("" for the first). */
  prev: string;
  hash: string;
}

/** The file name inside the data directory. */
export const DELETION_LEDGER_FILE = "deletion-ledger.jsonl";

/** The ledger file is not what Parley wrote: `line` (1-based) is the first entry that fails. */
export class LedgerTamperedError extends Error {
  override readonly name = "LedgerTamperedError";
  constructor(
    readonly file: string,
    readonly line: number,
    reason: string,
  ) {
    super(`deletion ledger ${file} is damaged at line ${line}: ${reason}`);
  }
}

/** The hash of an entry: the previous hash and every other field, in a fixed order. */
export function entryHash(entry: Omit<LedgerEntry, "hash">): string {
  const canonical = JSON.stringify([entry.n, entry.at, entry.subject, entry.id, entry.reason, entry.prev]);
  return createHash("sha256").update(entry.prev).update("\n").update(canonical).digest("hex");
}

/**
 * Parses and verifies ledger text: every line complete, well formed, numbered in order and
 * chained to the one before. Throws {@link LedgerTamperedError} naming the first bad line.
 */
export function parseLedger(text: string, file = DELETION_LEDGER_FILE): LedgerEntry[] {
  if (text === "") return [];
  const lines = text.split("\n");
  // Every entry is written with its newline in one write: text not ending in one was cut short.
  if (lines.pop() !== "") throw new LedgerTamperedError(file, lines.length + 1, "the last line is incomplete (truncated)");
  const entries: LedgerEntry[] = [];
  let prev = "";
  for (const [index, line] of lines.entries()) {
    const lineNo = index + 1;
    let entry: LedgerEntry;
    try {
      entry = JSON.parse(line) as LedgerEntry;
    } catch {
      throw new LedgerTamperedError(file, lineNo, "not valid JSON");
    }
    if (!isEntryShape(entry)) throw new LedgerTamperedError(file, lineNo, "not a ledger entry");
    if (entry.n !== lineNo) throw new LedgerTamperedError(file, lineNo, `entry number ${entry.n}, expected ${lineNo} (removed or reordered)`);
    if (entry.prev !== prev) throw new LedgerTamperedError(file, lineNo, "does not chain to the previous entry");
    if (entryHash(entry) !== entry.hash) throw new LedgerTamperedError(file, lineNo, "hash mismatch (edited)");
    entries.push(entry);
    prev = entry.hash;
  }
  return entries;
}

function isEntryShape(value: unknown): value is LedgerEntry {
  const e = value as Partial<LedgerEntry> | null;
  return (
    typeof e === "object" &&
    e !== null &&
    Number.isSafeInteger(e.n) &&
    Number.isSafeInteger(e.at) &&
    (e.subject === "conversation" || e.subject === "person") &&
    typeof e.id === "string" &&
    typeof e.reason === "string" &&
    typeof e.prev === "string" &&
    typeof e.hash === "string"
  );
}

/**
 * The ledger of one data directory. Appends are serialised and fsync'd before they resolve: a
 * destruction is reported done only once its ledger line is durable. Opening verifies the whole
 * file, so a damaged ledger stops the server instead of being replayed partially. Each append
 * re-reads the file first (it is small: one line per destruction), so a CLI appending while the
 * server runs does not fork the chain; two processes appending in the same instant could still
 * race, which the next open reports as damage rather than hiding.
 */
export class DeletionLedger {
  private tail: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly file: string,
    private entries: LedgerEntry[],
  ) {}

  /** Opens (or starts) the ledger in `dataDir`; throws {@link LedgerTamperedError} if damaged. */
  static async open(dataDir: string): Promise<DeletionLedger> {
    const file = path.join(dataDir, DELETION_LEDGER_FILE);
    return new DeletionLedger(file, await readLedgerFile(file));
  }

  /** Every entry, oldest first. */
  list(): readonly LedgerEntry[] {
    return this.entries;
  }

  /** True when the ledger records `id` as destroyed. */
  has(subject: DeletionSubject, id: string): boolean {
    return this.entries.some((e) => e.subject === subject && e.id === id);
  }

  /** Appends an entry durably (written and fsync'd), unless the subject is already recorded. */
  append(subject: DeletionSubject, id: string, reason: DeletionReason, at: number): Promise<LedgerEntry> {
    const next = this.tail.then(async () => {
      // Read afresh: another process (the `parley user delete` CLI) may have appended since.
      this.entries = await readLedgerFile(this.file);
      const known = this.entries.find((e) => e.subject === subject && e.id === id);
      if (known) return known;
      const last = this.entries.at(-1);
      const body = { n: this.entries.length + 1, at, subject, id, reason, prev: last?.hash ?? "" };
      const entry: LedgerEntry = { ...body, hash: entryHash(body) };
      const handle = await open(this.file, "a", 0o600);
      try {
        await handle.write(`${JSON.stringify(entry)}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      this.entries = [...this.entries, entry];
      return entry;
    });
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/** Reads and verifies a ledger file; a missing file is an empty ledger. */
export async function readLedgerFile(file: string): Promise<LedgerEntry[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  return parseLedger(text, file);
}

/** The conversations the ledger in `dataDir` records as destroyed (their logs are gone on purpose). */
export async function destroyedConversations(dataDir: string): Promise<string[]> {
  const entries = await readLedgerFile(path.join(dataDir, DELETION_LEDGER_FILE));
  return entries.filter((entry) => entry.subject === "conversation").map((entry) => entry.id);
}
