// The document rules' cost per update, in-process: typical updates (a keystroke in the notes, a
// message appended, a map value set) validated against the index of a document that already
// holds many messages and a long edited text, plus the index's build from the merged state.
// Run: node --import tsx bench/validate-update.ts [messages=10000]

import * as Y from "yjs";
import { appendMessage, notesOf } from "../protocol/index.ts";
import { DocumentIndex } from "../server/documents/document-index.ts";
import { effectsOf, readUpdate } from "../server/documents/update-structs.ts";
import { type ValidationContext, validateUpdate } from "../server/writes/update-validator.ts";

const messageCount = Number(process.argv[2] ?? 10_000);
const author = { user: "usr_bench", org: "org_bench" };
const doc = new Y.Doc();
for (let i = 0; i < messageCount; i++) {
  appendMessage(doc, { id: `m${i}`, authorUser: author.user, authorOrg: author.org, text: `message number ${i}`, createdAt: i });
  if (i % 10 === 0) notesOf(doc).insert(Math.floor(notesOf(doc).length / 2), `note ${i} `);
}
const state = Y.encodeStateAsUpdate(doc);

let started = performance.now();
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
const ctx: ValidationContext = {
  index,
  author,
  limits: { maxDepth: 64, maxItems: 10_000_000, maxBytes: 64 * 1024 * 1024 },
  maxUpdateBytes: 1024 * 1024,
  documentBytes: state.length,
};
console.log(`document: ${messageCount} messages, ${notesOf(doc).length} characters of notes, state ${state.length} bytes; index built in ${buildMs.toFixed(1)} ms`);
for (const [kind, change] of Object.entries(kinds)) {
  const rounds = 5000;
  const updates: Uint8Array[] = [];
  for (let i = 0; i < rounds; i++) {
    change();
    updates.push(captured[captured.length - 1]);
  }
  started = performance.now();
  for (const update of updates) {
    const verdict = validateUpdate(update, ctx);
    index.record(verdict.effects);
  }
  const perUpdate = ((performance.now() - started) * 1000) / rounds;
  // For scale, on the same machine at the same moment: what decoding alone costs.
  started = performance.now();
  for (const update of updates) Y.decodeUpdate(update);
  const decodeOnly = ((performance.now() - started) * 1000) / rounds;
  console.log(`${kind}: ${perUpdate.toFixed(1)} µs per update (${updates[0].length} bytes; Y.decodeUpdate alone ${decodeOnly.toFixed(1)} µs)`);
}
