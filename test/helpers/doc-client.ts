// A minimal Parley client for multi-node tests: joins one conversation, keeps a Y.Doc of
// everything it received, writes text and resolves each write with its acknowledged sequence
// number, and notes whether updates ever arrived out of order (Yjs had to hold them back).

import WebSocket from "ws";
import * as Y from "yjs";
import { decodeServerFrame, encodeControlFrame, encodeDocFrame, PROTOCOL_VERSION, type ServerFrame } from "../../protocol/index.ts";
import { Waiters } from "./wait.ts";

const REMOTE = Symbol("remote");

/** One socket, one conversation, one Y.Doc. */
export class DocClient {
  readonly doc = new Y.Doc();
  /** Live updates received (after the initial sync). */
  liveUpdates = 0;
  /** Live updates after which Yjs held structs back, waiting for an earlier update: delivery out of order. */
  outOfOrder = 0;
  /** Acknowledged writes: the text written and the seq it got. */
  readonly acked: { text: string; seq: number }[] = [];
  closeCode: number | null = null;
  private readonly pendingAcks: { text: string; resolve: (seq: number) => void; reject: (error: Error) => void }[] = [];
  private readonly waiters = new Waiters();
  private synced = false;

  private constructor(
    private readonly socket: WebSocket,
    readonly conversation: string,
  ) {
    socket.binaryType = "arraybuffer";
    socket.on("message", (data: ArrayBuffer) => this.receive(decodeServerFrame(new Uint8Array(data))));
    socket.on("close", (code: number) => {
      this.closeCode = code;
      for (const pending of this.pendingAcks.splice(0)) pending.reject(new Error(`socket closed (${code})`));
      this.notify();
    });
    this.doc.on("update", (update: Uint8Array, origin: unknown) => {
      if (origin !== REMOTE) this.socket.send(encodeDocFrame(this.conversation, { type: "update", update }));
    });
  }

  /** Connects, authenticates, joins and syncs (resolves once the server's state is applied). */
  static async open(url: string, token: string, conversation: string): Promise<DocClient> {
    const socket = new WebSocket(url);
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    const client = new DocClient(socket, conversation);
    socket.send(encodeControlFrame({ type: "auth", token, protocol: PROTOCOL_VERSION }));
    socket.send(encodeControlFrame({ type: "join", conversation }));
    socket.send(encodeDocFrame(conversation, { type: "sync-step1", stateVector: Y.encodeStateVector(client.doc) }));
    await client.until(() => client.synced, 10_000);
    return client;
  }

  get text(): string {
    return this.doc.getText("notes").toString();
  }

  /** Appends `text` to the notes; resolves with its sequence number once acknowledged. */
  write(text: string): Promise<number> {
    const promise = new Promise<number>((resolve, reject) => this.pendingAcks.push({ text, resolve, reject }));
    const notes = this.doc.getText("notes");
    notes.insert(notes.length, text);
    return promise;
  }

  /** Waits until `condition` holds (checked on every frame and every 50 ms). */
  async until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
    await this.waiters.until(() => condition() || undefined, timeoutMs, () => `condition not met in time (${this.conversation})`, 50);
  }

  close(): void {
    this.socket.close();
  }

  private receive(frame: ServerFrame): void {
    if (frame.kind === "control") {
      const message = frame.message;
      if (message.type === "ack") {
        const pending = this.pendingAcks.shift();
        if (pending) {
          this.acked.push({ text: pending.text, seq: message.seq });
          pending.resolve(message.seq);
        }
      } else if (message.type === "error" && message.conversation === this.conversation) {
        this.pendingAcks.shift()?.reject(new Error(`${message.code}: ${message.message}`));
      }
    } else if (frame.conversation === this.conversation) {
      const message = frame.message;
      if (message.type === "sync-step2") {
        Y.applyUpdate(this.doc, message.update, REMOTE);
        this.synced = true;
      } else if (message.type === "update") {
        Y.applyUpdate(this.doc, message.update, REMOTE);
        this.liveUpdates++;
        if (this.doc.store.pendingStructs !== null || this.doc.store.pendingDs !== null) this.outOfOrder++;
      }
    }
    this.notify();
  }

  private notify(): void {
    this.waiters.notify();
  }
}
