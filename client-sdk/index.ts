// Parley's client SDK: open conversations (Yjs documents) on a Parley server over one WebSocket,
// with durable-save tracking, presence and automatic reconnection. Runs in browsers and in Node.

export type { ReconnectPolicy } from "./backoff.ts";
export { backoffDelay, DEFAULT_RECONNECT_POLICY } from "./backoff.ts";
export type {
  ConversationEvents,
  ConversationHandle,
  ConversationState,
  ConversationStatusInfo,
  OpenOptions,
  SavedEvent,
  SyncedEvent,
} from "./conversation-handle.ts";
export type { ParleyErrorInfo } from "./errors.ts";
export type { EventFeed, EventFeedOptions } from "./event-feed.ts";
export { ParleyError } from "./errors.ts";
export type { Listener } from "./events.ts";
export type { ChangePage, ChangePoint, ChangesOptions, ConversationAtPoint, HistoryPoint, RestoreResult } from "./history.ts";
export type { ParleyLogger } from "./logger.ts";
export type {
  ClientEvents,
  ConnectionEvent,
  ConnectionState,
  ParleyClientOptions,
  SessionInfo,
  TokenProvider,
} from "./parley-client.ts";
export { ParleyClient } from "./parley-client.ts";
export type {
  WebSocketCloseEventLike,
  WebSocketConstructor,
  WebSocketLike,
  WebSocketMessageEventLike,
} from "./websocket.ts";
// Re-exported so apps need not import the protocol package for codes and the document schema.
export type {
  ConversationEntry,
  ConversationMessage,
  ConversationRetraction,
  EventActor,
  EventData,
  EventType,
  ParleyEvent,
  ReadMessage,
  Role,
} from "../protocol/index.ts";
export { appendMessage, appendRetraction, CloseCode, ErrorCode, EVENT_TYPES, messagesOf, notesOf, readMessages } from "../protocol/index.ts";
