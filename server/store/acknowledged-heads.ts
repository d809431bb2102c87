// Evidence of what was acknowledged, kept OUTSIDE the main database file, so that a log that lost
// acknowledged writes (a deleted or damaged SQLite WAL, files copied back by hand) is caught at
// start instead of served with a hole in it. Two files in the data directory:
// - acked-heads.journal: every group commit appends the heads it made durable (one JSON line,
//   fdatasync'd) BEFORE its appends are acknowledged, so no acknowledged write goes unpinned;
// - acked-heads.json: every PIN_INTERVAL_MS (and at a clean stop) the heads of every conversation
//   that changed, from the log itself (snapshots and restores too), written whole, synced,
//   renamed into place; the journal is emptied after it.
// At start (and in `parley audit verify`) the log is compared with the highest pin of both.

import { type FileHandle, open, readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { writePrivateTemp } from "../crypto/keys.ts";
import { syncDirectory } from "../platform/sync-directory.ts";
import type { Store } from "./store.ts";

export const ACKED_HEADS_FILE = "acked-heads.json";
export const ACKED_HEADS_JOURNAL = "acked-heads.journal";
export const ACKED_HEADS_FORMAT = "parley/acked-heads/v1";
/** How often heads that changed are pinned. */
export const PIN_INTERVAL_MS = 2000;

interface PinsFile {
  format: typeof ACKED_HEADS_FORMAT;
  /** When it was written (ms). */
  at: number;
  /** conversation id → last acknowledged seq (a destroyed conversation's line goes with it). */
  heads: Record<string, number>;
}

/** A conversation whose log is behind what was acknowledged. */
export interface LostWrites {
  conversation: string;
  /** Entries from..through were acknowledged and are missing. */
  from: number;
  through: number;
}

async function readOptional(file: string): Promise<string | null> {
  try {
    return await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw error;
  }
}

function raise(pins: Map<string, number>, heads: object): void {
  for (const [conversation, seq] of Object.entries(heads)) {
    if (Number.isSafeInteger(seq) && (pins.get(conversation) ?? 0) < seq) pins.set(conversation, seq);
  }
}

/** The highest pin of every conversation, from the pins file and the journal in `dataDir`. */
async function readPins(dataDir: string): Promise<Map<string, number>> {
  const pins = new Map<string, number>();
  const file = path.join(dataDir, ACKED_HEADS_FILE);
  const text = await readOptional(file);
  if (text !== null) {
    const parsed = JSON.parse(text) as Partial<PinsFile>;
    if (parsed.format !== ACKED_HEADS_FORMAT || typeof parsed.heads !== "object" || parsed.heads === null) {
      throw new Error(`${file} is not an acknowledged-heads file`);
    }
    raise(pins, parsed.heads);
  }
  const journalFile = path.join(dataDir, ACKED_HEADS_JOURNAL);
  const journal = await readOptional(journalFile);
  // Only complete lines: one cut short by a crash was never synced, so its appends were never acknowledged.
  const lines = (journal ?? "").split("\n").slice(0, -1);
  for (const [index, line] of lines.entries()) {
    let heads: unknown;
    try {
      heads = JSON.parse(line);
    } catch {
      throw new Error(`${journalFile} is damaged at line ${index + 1}`);
    }
    if (typeof heads === "object" && heads !== null) raise(pins, heads);
  }
  return pins;
}


/** Keeps the pins file up to date while a server runs. */
export class AcknowledgedHeads {
  private pins = new Map<string, number>();
  private since = 0;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();
  private journal: FileHandle | null = null;
  /** Journal appends and the journal's emptying, one at a time, in order. */
  private journalTail: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { dataDir: string; store: Pick<Store, "listChainHeads">; now: () => number; onError: (error: unknown) => void },
  ) {}

  get file(): string {
    return path.join(this.deps.dataDir, ACKED_HEADS_FILE);
  }

  /** Both files that hold pins (removing both accepts a loss). */
  get files(): string[] {
    return [this.file, path.join(this.deps.dataDir, ACKED_HEADS_JOURNAL)];
  }

  async start(): Promise<void> {
    this.pins = await readPins(this.deps.dataDir);
    this.journal = await open(path.join(this.deps.dataDir, ACKED_HEADS_JOURNAL), "a", 0o600);
    this.timer = setInterval(() => void this.pin().catch(this.deps.onError), PIN_INTERVAL_MS);
    this.timer.unref();
  }

  /** A destroyed conversation is no longer pinned (its log is gone on purpose). */
  forget(conversation: string): void {
    this.pins.delete(conversation);
  }

  /**
   * Pins the heads a group commit just made durable; resolves once the pin is on disk, and only
   * then may the appends be acknowledged. Never rejects: a pin that cannot be written is reported
   * (onError) and the appends are acknowledged anyway, being durable in the log (the periodic pin
   * still covers them, 2 s later).
   */
  pinCommitted(heads: readonly { conversation: string; seq: number }[]): Promise<void> {
    const journal = this.journal;
    if (journal === null) return Promise.resolve();
    const moved: Record<string, number> = {};
    let any = false;
    for (const { conversation, seq } of heads) {
      if (seq > (this.pins.get(conversation) ?? 0)) {
        this.pins.set(conversation, seq);
        moved[conversation] = seq;
        any = true;
      }
    }
    if (!any) return Promise.resolve();
    const line = `${JSON.stringify(moved)}\n`;
    const next = this.journalTail.then(async () => {
      await journal.write(line);
      await journal.datasync();
    });
    this.journalTail = next.catch(this.deps.onError);
    return this.journalTail;
  }

  /** Pins every head that changed since the last pin (the last second again: commit times may lag). */
  pin(): Promise<void> {
    this.writing = this.writing.then(async () => {
      const startedAt = this.deps.now();
      const changed = await this.deps.store.listChainHeads(Math.max(0, this.since - 1000));
      let moved = false;
      for (const head of changed) {
        if ((this.pins.get(head.conversation) ?? 0) < head.seq) {
          this.pins.set(head.conversation, head.seq);
          moved = true;
        }
      }
      this.since = startedAt;
      const journal = this.journal;
      const journalBytes = journal ? (await journal.stat()).size : 0;
      if (!moved && journalBytes === 0) return;
      // Between journal appends: the file then holds every pin the journal does, and the journal
      // can be emptied (its lines are in the file; a crash in between only repeats them).
      const compacted = this.journalTail.then(async () => {
        const body: PinsFile = { format: ACKED_HEADS_FORMAT, at: startedAt, heads: Object.fromEntries(this.pins) };
        await rename(await writePrivateTemp(this.file, Buffer.from(JSON.stringify(body))), this.file);
        if (journal) {
          // The rename must survive a power loss before the journal lines it replaces are dropped.
          await syncDirectory(this.deps.dataDir);
          await journal.truncate(0);
        }
      });
      this.journalTail = compacted.catch(this.deps.onError);
      await compacted;
    });
    return this.writing;
  }

  /** Stops pinning after a last pin of everything committed (graceful shutdown). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pin();
    await this.journalTail;
    await this.journal?.close();
    this.journal = null;
  }
}

/**
 * Compares the log with the pins: every pinned conversation must have a log at least as long,
 * unless it was destroyed (`destroyed` names those).
 */
export async function findLostWrites(dataDir: string, store: Pick<Store, "listChainHeads">, destroyed: readonly string[]): Promise<LostWrites[]> {
  const pins = await readPins(dataDir);
  if (pins.size === 0) return [];
  const logged = new Map((await store.listChainHeads(0)).map((head) => [head.conversation, head.seq]));
  const gone = new Set(destroyed);
  const lost: LostWrites[] = [];
  for (const [conversation, pinned] of pins) {
    const seq = logged.get(conversation);
    if (seq === undefined && gone.has(conversation)) continue;
    if ((seq ?? 0) < pinned) lost.push({ conversation, from: (seq ?? 0) + 1, through: pinned });
  }
  return lost;
}

/** After a deliberate rollback (`parley restore`), the old pins no longer apply. */
export async function clearAcknowledgedHeads(dataDir: string): Promise<void> {
  // The journal first: a crash in between leaves the (older) file, never the journal alone.
  for (const name of [ACKED_HEADS_JOURNAL, ACKED_HEADS_FILE]) {
    await unlink(path.join(dataDir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error;
    });
  }
}
