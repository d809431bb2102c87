// When the write path compacts a conversation: after the configured number of updates, and once
// the tail is a share of the document's bytes, so a large document is not re-merged for every few
// small updates (its cost per update would grow with the document).

import { describe, expect, it } from "vitest";
import { compactionDue } from "../server/writes/write-path.ts";

describe("compaction policy", () => {
  it("compacts a small document after the configured number of updates", () => {
    expect(compactionDue({ updatesSinceSnapshot: 9, bytesSinceSnapshot: 900, bytes: 1000 }, 10)).toBe(false);
    expect(compactionDue({ updatesSinceSnapshot: 10, bytesSinceSnapshot: 1000, bytes: 1100 }, 10)).toBe(true);
  });

  it("lets a large document gather a quarter of its bytes first", () => {
    const large = 4_000_000;
    expect(compactionDue({ updatesSinceSnapshot: 1000, bytesSinceSnapshot: 60_000, bytes: large }, 1000)).toBe(false);
    expect(compactionDue({ updatesSinceSnapshot: 1000, bytesSinceSnapshot: large / 4, bytes: large }, 1000)).toBe(true);
  });

  it("still compacts a large document once its tail holds sixteen times the configured updates", () => {
    expect(compactionDue({ updatesSinceSnapshot: 15_999, bytesSinceSnapshot: 16_000, bytes: 10_000_000 }, 1000)).toBe(false);
    expect(compactionDue({ updatesSinceSnapshot: 16_000, bytesSinceSnapshot: 16_000, bytes: 10_000_000 }, 1000)).toBe(true);
  });
});
