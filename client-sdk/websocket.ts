// The few WebSocket members the SDK uses, typed structurally so that browsers' WebSocket, the `ws`
// package and test doubles all fit without the DOM lib. Node 20 has no global WebSocket, so the
// constructor is injectable.

// Method-style signatures are checked bivariantly, which lets implementations whose handlers take
// richer event types (DOM MessageEvent, ws.MessageEvent) be assigned to these slots.
type Handler<E> = { bivarianceHack(event: E): void }["bivarianceHack"];

/** The part of a message event the SDK reads. */
export interface WebSocketMessageEventLike {
  data: unknown;
}
/** The part of a close event the SDK reads. */
export interface WebSocketCloseEventLike {
  code: number;
  reason: string;
}

/** The part of a WebSocket the SDK uses (browser WebSocket and `ws` both fit). */
export interface WebSocketLike {
  binaryType: string;
  readonly readyState: number;
  /** Frames are always backed by a plain ArrayBuffer (what DOM WebSocket.send accepts). */
  send(data: Uint8Array<ArrayBuffer>): void;
  close(code?: number, reason?: string): void;
  onopen: Handler<unknown> | null;
  onmessage: Handler<WebSocketMessageEventLike> | null;
  onclose: Handler<WebSocketCloseEventLike> | null;
  onerror: Handler<unknown> | null;
}

/** A WebSocket constructor: `globalThis.WebSocket` in browsers, `WebSocket` from `ws` in Node. */
export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `readyState` of an open socket (the same in every implementation). */
export const WEBSOCKET_OPEN = 1;

/** The injected constructor, or the global one; throws a clear error when there is neither. */
export function resolveWebSocket(injected: WebSocketConstructor | undefined): WebSocketConstructor {
  const found = injected ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (found === undefined) {
    throw new TypeError(
      "No WebSocket implementation: pass options.WebSocket (e.g. `WebSocket` from the `ws` package in Node 20)",
    );
  }
  return found;
}

/** The bytes of a binary message (ArrayBuffer or a view), or null for anything else (text). */
export function messageBytes(data: unknown): Uint8Array | null {
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  // An ArrayBuffer from another realm (iframe, vm context) fails instanceof.
  if (Object.prototype.toString.call(data) === "[object ArrayBuffer]") return new Uint8Array(data as ArrayBuffer);
  return null;
}
