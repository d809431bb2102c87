// Seeds the join storm's document: one client writes `seedBytes` of text in chunks, then fresh
// clients sync until one receives at least that much state (the server has applied everything:
// the text is ASCII, so the document's encoded state is never smaller than its length).

import * as Y from "yjs";
import { clients } from "../clients/index.ts";
import { BenchClient } from "./bench-client.ts";
import { now } from "./clock.ts";
import { type JoinPlan, roomName } from "./plan.ts";

// Below any sane maximum update size (Parley announces its own; 32 KiB is far under 1 MiB).
const CHUNK_CHARS = 32 * 1024;

/** The seeded document: its writer stays connected (Hocuspocus unloads a document nobody has open). */
export interface SeededDocument {
  chars: number;
  close(): Promise<void>;
}

/** Writes the document and waits until a new client gets all of it. */
export async function seedDocument(plan: JoinPlan): Promise<SeededDocument> {
  const protocol = clients[plan.server];
  const room = roomName(plan, 0);
  const writer = new BenchClient(protocol, plan.port, room, plan.auth);
  const errors: string[] = [];
  writer.events = { ...writer.events, error: (message) => errors.push(message) };
  await writer.synced;

  const doc = new Y.Doc();
  const text = doc.getText("notes");
  doc.on("update", (update: Uint8Array) => writer.send(protocol.encodeUpdate(room, update)));
  for (let n = 0; text.length < plan.seedBytes; n++) {
    text.insert(text.length, String.fromCharCode(97 + (n % 26)).repeat(Math.min(CHUNK_CHARS, plan.seedBytes - text.length)));
  }
  const written = text.length;

  const deadline = now() + plan.timeoutMs;
  let lastBytes = 0;
  while (now() < deadline) {
    const probe = new BenchClient(protocol, plan.port, room, plan.auth, plan.timeoutMs);
    try {
      lastBytes = await probe.synced;
    } finally {
      await probe.close();
    }
    if (lastBytes >= written) return { chars: written, close: () => writer.close() };
    if (errors.length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  await writer.close();
  throw new Error(`seeded ${written} bytes but a new client only got ${lastBytes}${errors.length ? `: ${errors.slice(0, 3).join("; ")}` : ""}`);
}
