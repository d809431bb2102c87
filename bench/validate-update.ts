// The document rules' cost per update, in-process: typical updates (a keystroke in the notes, a
// message appended, a map value set) validated against the index of a document that already
// holds many messages and a long edited text, plus the index's build from the merged state.
// Each kind is warmed up first (the JIT, not the rules, is what the first thousand calls
// measure); the figure is process CPU time per update, which a busy shared machine inflates far
// less than wall time (both are printed). The same updates against a 100-message document show
// whether the cost follows the document or the update.
// Run: node --import tsx bench/validate-update.ts [messages=10000]

import * as Y from "yjs";
import { appendMessage, notesOf } from "../protocol/index.ts";
import { DocumentIndex } from "../server/documents/document-index.ts";
import { effectsOf, readUpdate } from "../server/documents/update-structs.ts";
import { type ValidationContext, validateUpdate } from "../server/writes/update-validator.ts";

const messageCount = Number(process.argv[2] ?? 10_000);
const author = { user: "usr_bench", org: "org_bench" };
const WARM_UP = 3000;
const ROUNDS = 20_000;

/** A document of `messages` messages with edited notes, its index, and a way to make more updates. */
function conversation(messages: number) {
  const doc = new Y.Doc();
  for (let i = 0; i < messages; i++) {
    appendMessage(doc, { id: `m${i}`, authorUser: author.user, authorOrg: author.org, text: `message number ${i}`, createdAt: i });
    if (i % 10 === 0) notesOf(doc).insert(Math.floor(notesOf(doc).length / 2), `note ${i} `);
  }
  const state = Y.encodeStateAsUpdate(doc);
  const started = performance.now();
  const index = new DocumentIndex();
  index.record(effectsOf(readUpdate(state, index, { tolerant: true })));
  const buildMs = performance.now() - started;
  const captured: Uint8Array[] = [];
  doc.on("update", (u: Uint8Array) => captured.push(u));
  const kinds: Record<string, () => void> = {
    keystroke: () => notesOf(doc).insert(3, "x"),
    message: () => appendMessage(doc, { id: `n${captured.length}`, authorUser: author.user, authorOrg: author.org, text: "a new message", createdAt: 1 }),
    "map value": () => doc.getMap("meta").set(`k${captured.length % 50}`, { nested: [1, 2, 3] }),
  };
  const updatesOf = (kind: string, count: number): Uint8Array[] => {
    const updates: Uint8Array[] = [];
    for (let i = 0; i < count; i++) {
      kinds[kind]();
      updates.push(captured[captured.length - 1]);
    }
    return updates;
  };
  const ctx: ValidationContext = {
    index,
    author,
    limits: { maxDepth: 64, maxItems: 10_000_000, maxBytes: 64 * 1024 * 1024 },
    maxUpdateBytes: 1024 * 1024,
    documentBytes: state.length,
  };
  return { doc, state, buildMs, kinds: Object.keys(kinds), updatesOf, ctx };
}

/** Validates (and records, as the write path does) each update in turn: µs per update. */
function measure(updates: Uint8Array[], ctx: ValidationContext): { cpu: number; wall: number } {
  const cpu = process.cpuUsage();
  const wall = performance.now();
  for (const update of updates) ctx.index.record(validateUpdate(update, ctx).effects);
  const used = process.cpuUsage(cpu);
  return { cpu: (used.user + used.system) / updates.length, wall: ((performance.now() - wall) * 1000) / updates.length };
}

const big = conversation(messageCount);
const small = conversation(100);
console.log(
  `document: ${messageCount} messages, ${notesOf(big.doc).length} characters of notes, state ${big.state.length} bytes; index built in ${big.buildMs.toFixed(1)} ms`,
);
for (const kind of big.kinds) {
  measure(big.updatesOf(kind, WARM_UP), big.ctx);
  measure(small.updatesOf(kind, WARM_UP), small.ctx);
  const updates = big.updatesOf(kind, ROUNDS);
  const result = measure(updates, big.ctx);
  const against100 = measure(small.updatesOf(kind, ROUNDS), small.ctx);
  // For scale, on the same machine at the same moment: what decoding alone costs.
  const cpu = process.cpuUsage();
  for (const update of updates) Y.decodeUpdate(update);
  const used = process.cpuUsage(cpu);
  const decodeOnly = (used.user + used.system) / updates.length;
  console.log(
    `${kind}: ${result.cpu.toFixed(1)} µs CPU per update (wall ${result.wall.toFixed(1)}; ${updates[0].length} bytes; against 100 messages ${against100.cpu.toFixed(1)}; Y.decodeUpdate alone ${decodeOnly.toFixed(1)})`,
  );
}
