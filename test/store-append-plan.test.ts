// The chain planning both stores share: pure, so its promises are checked here without a
// database — numbering, linking, times that never go back, and inputs left untouched.

import { describe, expect, it } from "vitest";
import { verifyChain } from "../server/store/audit-chain.ts";
import { conversationsOf, genesisHead, planAppends, planSnapshot, SYSTEM_ACTOR } from "../server/store/append-plan.ts";
import { EntryHasher } from "../server/store/entry-hasher.ts";
import type { AppendRequest, LogEntry } from "../server/store/store.ts";
import { alice, bob, CONTRACT_AUDIT_KEY } from "./store-contract.ts";

const key = new EntryHasher(CONTRACT_AUDIT_KEY);

function request(conversation: string, byte: number, actor = alice): AppendRequest {
  return { conversation, kind: "update", actor, payload: new Uint8Array([byte, byte + 1]) };
}

describe("append plan", () => {
  it("numbers and links each conversation's entries in request order, from its current head", () => {
    const first = planAppends([request("b", 1), request("a", 2), request("b", 3)], new Map(), key, 1000);
    expect(first.committed).toEqual([
      { conversation: "b", seq: 1, at: 1000 },
      { conversation: "a", seq: 1, at: 1000 },
      { conversation: "b", seq: 2, at: 1000 },
    ]);
    expect(first.entries[2].prevHash).toEqual(first.entries[0].hash);
    expect(first.entries[0].prevHash).toEqual(genesisHead("b").hash);

    const second = planAppends([request("b", 4, bob)], first.heads, key, 2000);
    expect(second.committed).toEqual([{ conversation: "b", seq: 3, at: 2000 }]);
    const chain: LogEntry[] = [first.entries[0], first.entries[2], second.entries[0]];
    expect(verifyChain("b", chain, CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true, entries: 3 });
  });

  it("never stamps an entry earlier than the head, even when the clock steps back", () => {
    const heads = new Map([["a", { seq: 7, hash: new Uint8Array(32), at: 5000 }]]);
    const plan = planAppends([request("a", 1)], heads, key, 4000);
    expect(plan.committed).toEqual([{ conversation: "a", seq: 8, at: 5000 }]);
    expect(heads.get("a")).toEqual({ seq: 7, hash: new Uint8Array(32), at: 5000 });
  });

  it("records a snapshot as a system entry whose HMAC covers the state, with no payload of its own", () => {
    const state = new Uint8Array([9, 9, 9]);
    const { entry, head } = planSnapshot("a", genesisHead("a"), state, key, 10);
    expect(entry).toMatchObject({ seq: 1, kind: "snapshot", size: 3, payload: null, ...SYSTEM_ACTOR });
    expect(head).toEqual({ seq: 1, hash: entry.hash, at: 10 });
    expect(verifyChain("a", [{ ...entry, payload: state }], CONTRACT_AUDIT_KEY)).toMatchObject({ ok: true });
  });

  it("lists a batch's conversations once each, in one fixed order", () => {
    expect(conversationsOf([request("c", 1), request("a", 1), request("c", 2), request("b", 1)])).toEqual(["a", "b", "c"]);
  });
});
