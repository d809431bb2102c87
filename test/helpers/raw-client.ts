// A bare protocol client for tests: sends exactly the frames a test builds (including hostile
// ones) and records everything the server answers, decoded, plus the close code.

import WebSocket from "ws";
import {
  type ClientControlMessage,
  decodeServerFrame,
  type DocMessage,
  encodeControlFrame,
  encodeDocFrame,
  PROTOCOL_VERSION,
  type ServerFrame,
} from "../../protocol/index.ts";
import { Waiters } from "./wait.ts";

/** A connected raw client. */
export class RawClient {
  readonly frames: ServerFrame[] = [];
  closeCode: number | null = null;
  closeReason = "";
  private readonly waiters = new Waiters();

  private constructor(readonly socket: WebSocket) {
    socket.binaryType = "arraybuffer";
    socket.on("message", (data: ArrayBuffer) => {
      this.frames.push(decodeServerFrame(new Uint8Array(data)));
      this.notify();
    });
    socket.on("close", (code: number, reason: Buffer) => {
      this.closeCode = code;
      this.closeReason = reason.toString();
      this.notify();
    });
  }

  static async connect(url: string, headers: Record<string, string> = {}): Promise<RawClient> {
    const socket = new WebSocket(url, { headers });
    await new Promise<void>((resolve, reject) => {
      socket.once("open", () => resolve());
      socket.once("error", reject);
    });
    return new RawClient(socket);
  }

  /** Connects, authenticates and waits for auth-ok. */
  static async authenticated(url: string, token: string): Promise<RawClient> {
    const client = await RawClient.connect(url);
    client.control({ type: "auth", token, protocol: PROTOCOL_VERSION });
    await client.waitForControl("auth-ok");
    return client;
  }

  control(message: ClientControlMessage): void {
    this.socket.send(encodeControlFrame(message));
  }

  doc(conversation: string, message: DocMessage): void {
    this.socket.send(encodeDocFrame(conversation, message));
  }

  raw(bytes: Uint8Array | string): void {
    this.socket.send(bytes);
  }

  /** Resolves with the first recorded frame (from `from` on) matching, or rejects after a timeout. */
  async waitFor<T extends ServerFrame>(match: (frame: ServerFrame) => frame is T, timeoutMs?: number): Promise<T>;
  async waitFor(match: (frame: ServerFrame) => boolean, timeoutMs?: number): Promise<ServerFrame>;
  async waitFor(match: (frame: ServerFrame) => boolean, timeoutMs = 5000): Promise<ServerFrame> {
    return this.waiters.until(
      () => {
        const found = this.frames.find(match);
        if (found) return found;
        if (this.closeCode !== null) throw new Error(`socket closed (${this.closeCode} ${this.closeReason}) while waiting`);
        return undefined;
      },
      timeoutMs,
      () => "timed out waiting for a frame",
    );
  }

  /** Waits for a control message of a type (and optional extra condition). */
  async waitForControl<K extends ServerFrame & { kind: "control" }>(
    type: K["message"]["type"],
    extra: (message: Record<string, unknown>) => boolean = () => true,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>> {
    const frame = await this.waitFor(
      (f) => f.kind === "control" && f.message.type === type && extra(f.message as unknown as Record<string, unknown>),
      timeoutMs,
    );
    return (frame as { message: unknown }).message as Record<string, unknown>;
  }

  /** Resolves with the close code once the server closes the socket. */
  async closed(timeoutMs = 5000): Promise<number> {
    return this.waiters.until(() => this.closeCode ?? undefined, timeoutMs, () => "timed out waiting for close");
  }

  close(): void {
    this.socket.close();
  }

  private notify(): void {
    this.waiters.notify();
  }
}
