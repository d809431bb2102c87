// Writes Yjs updates to a conversation over a real socket and waits for every acknowledgement
// (crash tests: what was acknowledged is what must survive).

import * as Y from "yjs";
import type { ChildServer } from "./child-server.ts";
import { RawClient } from "./raw-client.ts";

/** Writes `count` updates to `conversation` and resolves with the last acknowledged seq. */
export async function writeAcked(server: Pick<ChildServer, "url">, token: string, conversation: string, count: number): Promise<number> {
  const client = await RawClient.authenticated(server.url, token);
  client.control({ type: "join", conversation });
  await client.waitForControl("joined");
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on("update", (u: Uint8Array) => updates.push(u));
  for (let i = 0; i < count; i++) doc.getText("notes").insert(doc.getText("notes").length, `${i};`);
  for (const update of updates) client.doc(conversation, { type: "update", update });
  const last = await client.waitFor((f) => f.kind === "control" && f.message.type === "ack" && f.message.seq >= count);
  client.close();
  return (last as { message: { seq: number } }).message.seq;
}
