// The receive path recognises updates without a Y.Doc, whether a server forwards the writer's
// bytes, re-encodes them from its own document, or merges several into one.

import { describe, expect, it } from "vitest";
import * as Y from "yjs";
import { UpdateCatalog } from "../load/catalog.ts";
import { buildWriterUpdates } from "../load/writers.ts";

describe("UpdateCatalog", () => {
  const source = buildWriterUpdates(3, 20);
  const catalog = new UpdateCatalog(source);
  const seen = (update: Uint8Array) => {
    const found: [number, number][] = [];
    catalog.identify(update, (writer, index) => found.push([writer, index]));
    return found;
  };

  it("builds small updates, 30–100 bytes each, the same every time", () => {
    for (const update of source.updates) {
      expect(update.length).toBeGreaterThanOrEqual(30);
      expect(update.length).toBeLessThanOrEqual(110);
    }
    expect(buildWriterUpdates(3, 20).updates[25]).toEqual(source.updates[25]);
  });

  it("identifies a forwarded update by its header", () => {
    expect(seen(source.updates[1 * 20 + 7])).toEqual([[1, 7]]);
  });

  it("identifies updates re-encoded by a server's own document", () => {
    const server = new Y.Doc();
    const broadcast: Uint8Array[] = [];
    server.on("update", (update: Uint8Array) => broadcast.push(update));
    for (let i = 0; i < 20; i++) for (let w = 0; w < 3; w++) Y.applyUpdate(server, source.updates[w * 20 + i]);
    expect(broadcast.map((u) => seen(u))).toEqual(Array.from({ length: 60 }, (_, k) => [[k % 3, Math.floor(k / 3)]]));
  });

  it("credits every update a merged update carries", () => {
    const merged = Y.mergeUpdates([...source.updates.slice(20, 25), source.updates[40]]);
    expect(seen(merged).sort()).toEqual([[1, 0], [1, 1], [1, 2], [1, 3], [1, 4], [2, 0]].sort());
  });

  it("ignores updates from clients that are not writers", () => {
    const doc = new Y.Doc();
    let update: Uint8Array = new Uint8Array();
    doc.on("update", (u: Uint8Array) => {
      update = u;
    });
    doc.getText("notes").insert(0, "someone else");
    expect(seen(update)).toEqual([]);
  });
});
