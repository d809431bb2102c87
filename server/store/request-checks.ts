// Checks on the arguments of store calls, shared by every backend so a request one store refuses
// is refused by all of them, with the same StoreError code, before any transaction starts.

import type { AppendRequest } from "./store.ts";
import { StoreError } from "../sql/store-error.ts";

export function checkConversation(conversation: unknown): asserts conversation is string {
  if (typeof conversation !== "string" || conversation.length === 0) {
    throw new StoreError("invalid_request", "conversation must be a non-empty string");
  }
  // Postgres text cannot hold NUL; refusing it everywhere keeps the backends interchangeable.
  if (conversation.includes("\0")) throw new StoreError("invalid_request", "conversation must not contain NUL");
}

export function checkAfterSeq(seq: unknown): void {
  if (typeof seq !== "number" || !Number.isSafeInteger(seq) || seq < 0) {
    throw new StoreError("invalid_request", "afterSeq must be a non-negative integer");
  }
}

export function checkLimit(limit: unknown): void {
  if (typeof limit !== "number" || !Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError("invalid_request", "limit must be a positive integer");
  }
}

/** Validates a whole batch; a single bad request rejects the batch before anything is written. */
export function checkAppendBatch(requests: readonly AppendRequest[]): void {
  if (!Array.isArray(requests)) throw new StoreError("invalid_request", "appendBatch expects an array");
  for (const r of requests) checkAppend(r);
}

function checkAppend(r: AppendRequest): void {
  checkConversation(r?.conversation);
  if (r.kind !== "update") throw new StoreError("invalid_request", `cannot append an entry of kind ${JSON.stringify(r.kind)}`);
  if (!(r.payload instanceof Uint8Array)) throw new StoreError("invalid_request", "payload must be a Uint8Array");
  if (r.claims !== undefined && (!Array.isArray(r.claims) || !r.claims.every((c) => Number.isSafeInteger(c) && c >= 0))) {
    throw new StoreError("invalid_request", "claims must be client ids (non-negative integers)");
  }
  const a = r.actor;
  if (!a || typeof a.user !== "string" || typeof a.org !== "string" || typeof a.session !== "string" || a.user === "") {
    throw new StoreError("invalid_request", "actor must name a user, an org and a session");
  }
  if (a.user.includes("\0") || a.org.includes("\0") || a.session.includes("\0")) {
    throw new StoreError("invalid_request", "actor fields must not contain NUL");
  }
}
