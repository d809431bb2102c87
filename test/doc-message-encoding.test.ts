// The fan-out's frame encoder writes y-protocols messages straight into an array of the exact
// size instead of through lib0's growable encoder: it must give the same bytes for every message
// type and payload size (varuint lengths of 1 to 4 bytes included), and decode back to the same message.

import fc from "fast-check";
import * as encoding from "lib0/encoding";
import { describe, expect, it } from "vitest";
import { type DocMessage, decodeDocMessage, encodeDocMessage } from "../protocol/index.ts";
import { writeDocMessage } from "../protocol/ymessages.ts";

/** CI replays one fixed seed (a red CI is a defect, never a roll of the dice); elsewhere each run explores a new one. */
const CI_SEED = 20261204;

function viaLib0(message: DocMessage): Uint8Array {
  const encoder = encoding.createEncoder();
  writeDocMessage(encoder, message);
  return encoding.toUint8Array(encoder);
}

const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
const message: fc.Arbitrary<DocMessage> = fc.oneof(
  bytes(300).map((update): DocMessage => ({ type: "update", update })),
  bytes(300).map((update): DocMessage => ({ type: "sync-step2", update })),
  bytes(300).map((stateVector): DocMessage => ({ type: "sync-step1", stateVector })),
  bytes(300).map((update): DocMessage => ({ type: "awareness", update })),
);

describe("encodeDocMessage", () => {
  it("gives lib0's bytes for every message type and size, and decodes back to the same message", () => {
    const seed = Number(process.env.FC_SEED ?? (process.env.CI === "true" ? CI_SEED : Date.now() % 1_000_000));
    const numRuns = Number(process.env.FC_RUNS ?? 500);
    try {
      fc.assert(
        fc.property(message, (m) => {
          const encoded = encodeDocMessage(m);
          expect(encoded).toEqual(viaLib0(m));
          expect(decodeDocMessage(encoded)).toEqual(m);
        }),
        { seed, numRuns },
      );
    } catch (error) {
      throw new Error(`${(error as Error).message}\n(FC_SEED=${seed} reproduces it)`);
    }
  });

  it("writes lengths that need several varuint bytes exactly as lib0 does", () => {
    for (const length of [0, 1, 127, 128, 129, 16_383, 16_384, 70_000, 2_097_152]) {
      const update = new Uint8Array(length).fill(7);
      // Compared as buffers: vitest's deep equality walks megabyte arrays element by element.
      expect(Buffer.from(encodeDocMessage({ type: "update", update })).equals(Buffer.from(viaLib0({ type: "update", update })))).toBe(true);
    }
  });
});
