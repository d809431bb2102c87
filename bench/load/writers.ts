// The writers' updates, generated before the clock starts: writer w owns a Y.Doc with the fixed
// client id CLIENT_BASE + w and appends a deterministic 30–90 character chunk to a Y.Text per
// update. Being deterministic, every worker can rebuild the same catalog and recognise any
// writer's update on receipt without talking to the writer's thread.

import * as Y from "yjs";

/** Yjs client id of writer 0; writer w uses CLIENT_BASE + w. */
export const CLIENT_BASE = 1_000_000;

function chunkLength(writer: number, index: number): number {
  return 30 + ((writer * 7919 + index * 104_729) % 61);
}

function chunkText(writer: number, index: number): string {
  const seed = `w${writer}#${index}:`;
  return seed.padEnd(chunkLength(writer, index), "abcdefghijklmnopqrstuvwxyz".charAt((writer + index) % 26));
}

/** Every update of every writer, plus what identifies each one on receipt. */
export interface WriterUpdates {
  writers: number;
  perWriter: number;
  /** updates[w * perWriter + i] = the Yjs update of writer w's i-th change. */
  updates: Uint8Array[];
  /** Yjs clock at which update i of writer w starts (same layout as `updates`). */
  clockStarts: Int32Array;
}

/** Builds `perWriter` updates for each of `writers` writers. */
export function buildWriterUpdates(writers: number, perWriter: number): WriterUpdates {
  const updates: Uint8Array[] = new Array(writers * perWriter);
  const clockStarts = new Int32Array(writers * perWriter);
  for (let w = 0; w < writers; w++) {
    const doc = new Y.Doc({ gc: false });
    doc.clientID = CLIENT_BASE + w;
    const text = doc.getText("notes");
    let captured: Uint8Array | undefined;
    doc.on("update", (update: Uint8Array) => {
      captured = update;
    });
    let clock = 0;
    for (let i = 0; i < perWriter; i++) {
      const chunk = chunkText(w, i);
      text.insert(text.length, chunk);
      updates[w * perWriter + i] = captured!;
      clockStarts[w * perWriter + i] = clock;
      clock += chunk.length;
    }
    doc.destroy();
  }
  return { writers, perWriter, updates, clockStarts };
}
