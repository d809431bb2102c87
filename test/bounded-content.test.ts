// The bounded reader of stored content (server/platform/bounded-content.ts): for everything
// within its limits it gives exactly what Yjs's own toJSON gives (key order included), and past
// them it refuses with ContentTooComplex instead of overflowing the stack.

import fc from "fast-check";
import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { ErrorCode } from "../protocol/index.ts";
import { ParleyError } from "../server/platform/errors.ts";
import { materialise, toPlainContent } from "../server/platform/bounded-content.ts";
import { deeplyNestedUpdate } from "./helpers/deep-update.ts";

/** CI replays one fixed seed (a red CI is a defect, never a roll of the dice); elsewhere each run explores a new one. */
const CI_SEED = 20261204;

const seed = Number(process.env.FUZZ_SEED ?? (process.env.CI === "true" ? CI_SEED : Date.now() % 2 ** 31));
const numRuns = Number(process.env.FUZZ_RUNS ?? 200);

describe("bounded content", () => {
  it("matches Yjs's toJSON for any JSON value within the limits", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 6 })), (entries) => {
        const doc = new Y.Doc();
        const map = doc.getMap<unknown>("meta");
        for (const [key, value] of Object.entries(entries)) map.set(key, value);
        const nested = new Y.Map<unknown>();
        map.set("nested", nested);
        nested.set("list", Y.Array.from([1, { a: [2, 3] }]));
        expect(JSON.stringify(toPlainContent(map))).toBe(JSON.stringify(map.toJSON()));
      }),
      { seed, numRuns },
    );
  });

  it("refuses content nested past the limit, and a state too deep to load, with ContentTooComplex", () => {
    const doc = materialise(deeplyNestedUpdate(40_000));
    expect(() => JSON.stringify(doc.getArray("messages").toJSON())).toThrow(RangeError);
    const refusal = (() => {
      try {
        toPlainContent(doc.getArray("messages"));
      } catch (error) {
        return error;
      }
    })();
    expect(refusal).toBeInstanceOf(ParleyError);
    expect((refusal as ParleyError).code).toBe(ErrorCode.ContentTooComplex);
    expect(() => toPlainContent(new Array(10).fill(0), { maxDepth: 64, maxNodes: 5 })).toThrow(ParleyError);
  });
});
