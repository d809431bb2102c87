// A writer for document-rule tests: one authenticated socket joined to one conversation, sending
// the exact update bytes a test built and resolving with the server's answer to each (ack with
// its seq, or the error code and message). One write at a time, so answers never interleave.

import * as Y from "yjs";
import type { ServerFrame } from "../../protocol/index.ts";
import { RawClient } from "./raw-client.ts";

/** The server's answer to one update. */
export type WriteAnswer = { ok: true; seq: number } | { ok: false; code: number; message: string };

type Control = ServerFrame & { kind: "control" };

export class UpdateWriter {
  private constructor(
    readonly client: RawClient,
    readonly conversation: string,
  ) {}

  /** Connects with `token`, joins and waits until joined. */
  static async join(url: string, token: string, conversation: string): Promise<UpdateWriter> {
    const client = await RawClient.authenticated(url, token);
    client.control({ type: "join", conversation });
    await client.waitForControl("joined", (m) => m.conversation === conversation);
    return new UpdateWriter(client, conversation);
  }

  /** Sends one update and waits for its ack or error. */
  async send(update: Uint8Array): Promise<WriteAnswer> {
    const from = this.client.frames.length;
    this.client.doc(this.conversation, { type: "update", update });
    const isAnswer = (f: ServerFrame): f is Control =>
      f.kind === "control" && (f.message.type === "ack" || (f.message.type === "error" && (f.message as { request?: string }).request === "write"));
    const frame = await this.client.waitFor((f) => this.client.frames.indexOf(f, from) >= from && isAnswer(f), 10_000);
    const message = (frame as Control).message as unknown as { type: string; seq?: number; code?: number; message?: string };
    return message.type === "ack" ? { ok: true, seq: message.seq as number } : { ok: false, code: message.code as number, message: message.message ?? "" };
  }

  close(): void {
    this.client.close();
  }
}

/** The update one local change to a document makes (the document keeps the change). */
export function updateOf(doc: Y.Doc, change: () => void): Uint8Array {
  let update: Uint8Array | null = null;
  const capture = (u: Uint8Array) => {
    update = update ? Y.mergeUpdates([update, u]) : u;
  };
  doc.on("update", capture);
  try {
    doc.transact(change);
  } finally {
    doc.off("update", capture);
  }
  if (!update) throw new Error("the change made no update");
  return update;
}

/** A document holding a state (from /history's base64 `state` or raw bytes). */
export function docFrom(state: Uint8Array | string, clientID?: number): Y.Doc {
  const doc = new Y.Doc();
  Y.applyUpdate(doc, typeof state === "string" ? Buffer.from(state, "base64") : state);
  // Set afterwards: Yjs gives a document a new id when an applied update already uses its own.
  if (clientID !== undefined) doc.clientID = clientID;
  return doc;
}
