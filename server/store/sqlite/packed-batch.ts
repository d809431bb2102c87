// A group commit's appends, and their results, as one binary buffer each, moved (not cloned)
// between the event loop and the store worker: one message per batch each way. Cloning the
// requests as objects cost a structured clone of every request, its actor and its payload view
// on both threads (more main-thread time than the commit's other bookkeeping). Strings repeat
// within a batch (a conversation's id, a writer's actor), so each is written once, in a table.
//
// Batch layout (little-endian): u32 request count, u32 string count; each string: u32 byte length
// and its UTF-8 bytes; each request: u32 conversation, user, org and session string indexes,
// u32 claim count, f64 per claim, u32 payload length and the payload bytes.
// Results layout: per request, f64 seq, f64 at, f64 refused (1 when refused).

import { checkAppendBatch } from "../request-checks.ts";
import type { AppendRequest, CommittedAppend } from "../store.ts";
import { StoreError } from "../../sql/store-error.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** Grows as it writes: a batch's size is known only after its strings are encoded. */
class Writer {
  bytes: Uint8Array;
  view: DataView;
  at = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(capacity);
    this.view = new DataView(this.bytes.buffer);
  }

  private room(n: number): void {
    if (this.at + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.at + n) size *= 2;
    const grown = new Uint8Array(size);
    grown.set(this.bytes.subarray(0, this.at));
    this.bytes = grown;
    this.view = new DataView(grown.buffer);
  }

  u32(value: number): void {
    this.room(4);
    this.view.setUint32(this.at, value, true);
    this.at += 4;
  }

  f64(value: number): void {
    this.room(8);
    this.view.setFloat64(this.at, value, true);
    this.at += 8;
  }

  raw(bytes: Uint8Array): void {
    this.room(bytes.byteLength);
    this.bytes.set(bytes, this.at);
    this.at += bytes.byteLength;
  }

  string(value: string): void {
    // At most 3 bytes per UTF-16 unit.
    this.room(4 + value.length * 3);
    const { written } = encoder.encodeInto(value, this.bytes.subarray(this.at + 4));
    this.view.setUint32(this.at, written, true);
    this.at += 4 + written;
  }

  /** The written bytes in a buffer of their own, to transfer. */
  finish(): ArrayBuffer {
    return this.bytes.buffer.slice(0, this.at) as ArrayBuffer;
  }
}

class Reader {
  private readonly view: DataView;
  private readonly bytes: Uint8Array;
  private at = 0;

  constructor(buffer: ArrayBuffer) {
    this.view = new DataView(buffer);
    this.bytes = new Uint8Array(buffer);
  }

  private need(n: number): void {
    if (this.at + n > this.bytes.length) throw new StoreError("invalid_request", "packed append batch is truncated");
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.at, true);
    this.at += 4;
    return value;
  }

  f64(): number {
    this.need(8);
    const value = this.view.getFloat64(this.at, true);
    this.at += 8;
    return value;
  }

  /** A view into the buffer (no copy). */
  raw(length: number): Uint8Array {
    this.need(length);
    const out = this.bytes.subarray(this.at, this.at + length);
    this.at += length;
    return out;
  }

  string(): string {
    return decoder.decode(this.raw(this.u32()));
  }

  get done(): boolean {
    return this.at === this.bytes.length;
  }
}

// UTF-8 cannot carry a lone surrogate (it would come back as U+FFFD: another name). With the u
// flag a surrogate pair is one code point: only unpaired halves match.
const LONE_SURROGATE = /\p{Cs}/u;

function packable(r: AppendRequest | null | undefined): r is AppendRequest {
  if (!r || !(r.payload instanceof Uint8Array) || r.kind !== "update" || typeof r.conversation !== "string") return false;
  const a = r.actor;
  if (typeof a !== "object" || a === null || typeof a.user !== "string" || typeof a.org !== "string" || typeof a.session !== "string") return false;
  return r.claims === undefined || (Array.isArray(r.claims) && r.claims.every((c) => typeof c === "number"));
}

/** Packs a batch of appends into one buffer (the payloads copied: the caller keeps its own for fan-out). */
export function packAppendBatch(requests: readonly AppendRequest[]): ArrayBuffer {
  if (!Array.isArray(requests)) throw new StoreError("invalid_request", "appendBatch expects an array");
  const strings = new Map<string, number>();
  const order: string[] = [];
  const indexOf = (value: string): number => {
    let index = strings.get(value);
    if (index === undefined) {
      // Checked once per batch and string (a batch names each conversation and writer many times).
      if (LONE_SURROGATE.test(value)) throw new StoreError("invalid_request", "append request strings must be well-formed Unicode");
      index = order.length;
      strings.set(value, index);
      order.push(value);
    }
    return index;
  };
  const rows = requests.map((r) => {
    // What the layout cannot carry is refused here, with the error the store gives for it; the
    // values themselves (empty ids, NUL, claims) are checked by the store as for any request.
    if (!packable(r)) {
      checkAppendBatch([r]);
      throw new StoreError("invalid_request", "malformed append request");
    }
    const { actor } = r;
    return [indexOf(r.conversation), indexOf(actor.user), indexOf(actor.org), indexOf(actor.session)];
  });
  // Sized for the worst case of the strings' UTF-8 (3 bytes per unit), so it never grows.
  let capacity = 8;
  for (const value of order) capacity += 4 + value.length * 3;
  for (const r of requests) capacity += 24 + (r.claims?.length ?? 0) * 8 + r.payload.byteLength;
  const out = new Writer(capacity);
  out.u32(requests.length);
  out.u32(order.length);
  for (const value of order) out.string(value);
  for (let i = 0; i < requests.length; i++) {
    for (const index of rows[i]) out.u32(index);
    const claims = requests[i].claims ?? [];
    out.u32(claims.length);
    for (const claim of claims) out.f64(claim);
    out.u32(requests[i].payload.byteLength);
    out.raw(requests[i].payload);
  }
  return out.finish();
}

/** The appends of a packed batch; payloads are views into `buffer`. The store checks them as any request. */
export function unpackAppendBatch(buffer: ArrayBuffer): AppendRequest[] {
  if (!(buffer instanceof ArrayBuffer)) throw new StoreError("invalid_request", "a packed append batch is an ArrayBuffer");
  const input = new Reader(buffer);
  const count = input.u32();
  const strings: string[] = [];
  for (let i = input.u32(); i > 0; i--) strings.push(input.string());
  const string = (index: number): string => {
    if (index >= strings.length) throw new StoreError("invalid_request", "packed append batch names a string it does not hold");
    return strings[index];
  };
  const requests: AppendRequest[] = [];
  for (let i = 0; i < count; i++) {
    const conversation = string(input.u32());
    const actor = { user: string(input.u32()), org: string(input.u32()), session: string(input.u32()) };
    const claimCount = input.u32();
    // Most appends claim nothing: no array for them.
    let claims: number[] | undefined;
    if (claimCount > 0) {
      claims = [];
      for (let c = 0; c < claimCount; c++) claims.push(input.f64());
    }
    const payload = input.raw(input.u32());
    requests.push(claims ? { conversation, kind: "update", actor, payload, claims } : { conversation, kind: "update", actor, payload });
  }
  if (!input.done) throw new StoreError("invalid_request", "packed append batch has trailing bytes");
  return requests;
}

/** Packs the results of a batch (their conversations are the requests', in the same order). */
export function packCommitted(results: readonly CommittedAppend[]): ArrayBuffer {
  const values = new Float64Array(results.length * 3);
  for (let i = 0; i < results.length; i++) {
    values[i * 3] = results[i].seq;
    values[i * 3 + 1] = results[i].at;
    values[i * 3 + 2] = results[i].refused ? 1 : 0;
  }
  return values.buffer;
}

/** The results of a batch, for its requests in order. */
export function unpackCommitted(buffer: ArrayBuffer, requests: readonly AppendRequest[]): CommittedAppend[] {
  const values = new Float64Array(buffer);
  if (values.length !== requests.length * 3) throw new StoreError("internal", `the store answered ${values.length / 3} results for ${requests.length} appends`);
  const results: CommittedAppend[] = new Array(requests.length);
  for (let i = 0; i < requests.length; i++) {
    const committed: CommittedAppend = { conversation: requests[i].conversation, seq: values[i * 3], at: values[i * 3 + 1] };
    if (values[i * 3 + 2] === 1) committed.refused = "client_id_taken";
    results[i] = committed;
  }
  return results;
}
