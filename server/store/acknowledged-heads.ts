// Evidence of what was acknowledged, kept OUTSIDE the main database file. Every few seconds the
// head (last seq) of each conversation that changed is pinned into <dataDir>/acked-heads.json (written whole, synced, renamed into place). At start the log is
// compared with it: a conversation whose log is behind its pin lost acknowledged writes (a
// deleted or damaged SQLite WAL, files copied back by hand), and the server refuses to start,
// naming them, instead of serving a history with a hole in it. Window: writes acknowledged in
// the last PIN_INTERVAL_MS before a crash are not pinned yet, so their loss goes unseen.

import { readFile, rename, unlink } from "node:fs/promises";
import path from "node:path";
import { writePrivateTemp } from "../crypto/keys.ts";
import type { Store } from "./store.ts";

export const ACKED_HEADS_FILE = "acked-heads.json";
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

async function readPins(file: string): Promise<Map<string, number>> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return new Map();
    throw error;
  }
  const parsed = JSON.parse(text) as Partial<PinsFile>;
  if (parsed.format !== ACKED_HEADS_FORMAT || typeof parsed.heads !== "object" || parsed.heads === null) {
    throw new Error(`${file} is not an acknowledged-heads file`);
  }
  return new Map(Object.entries(parsed.heads).filter((entry): entry is [string, number] => Number.isSafeInteger(entry[1])));
}

/** Keeps the pins file up to date while a server runs. */
export class AcknowledgedHeads {
  private pins = new Map<string, number>();
  private since = 0;
  private timer: NodeJS.Timeout | null = null;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { dataDir: string; store: Pick<Store, "listChainHeads">; now: () => number; onError: (error: unknown) => void },
  ) {}

  get file(): string {
    return path.join(this.deps.dataDir, ACKED_HEADS_FILE);
  }

  async start(): Promise<void> {
    this.pins = await readPins(this.file);
    this.timer = setInterval(() => void this.pin().catch(this.deps.onError), PIN_INTERVAL_MS);
    this.timer.unref();
  }

  /** A destroyed conversation is no longer pinned (its log is gone on purpose). */
  forget(conversation: string): void {
    this.pins.delete(conversation);
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
      if (!moved) return;
      const body: PinsFile = { format: ACKED_HEADS_FORMAT, at: startedAt, heads: Object.fromEntries(this.pins) };
      await rename(await writePrivateTemp(this.file, Buffer.from(JSON.stringify(body))), this.file);
    });
    return this.writing;
  }

  /** Stops pinning after a last pin of everything committed (graceful shutdown). */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.pin();
  }
}

/**
 * Compares the log with the pins: every pinned conversation must have a log at least as long,
 * unless it was destroyed (`destroyed` names those).
 */
export async function findLostWrites(dataDir: string, store: Pick<Store, "listChainHeads">, destroyed: readonly string[]): Promise<LostWrites[]> {
  const pins = await readPins(path.join(dataDir, ACKED_HEADS_FILE));
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
  await unlink(path.join(dataDir, ACKED_HEADS_FILE)).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== "ENOENT") throw error;
  });
}
