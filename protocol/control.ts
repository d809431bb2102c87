// Control messages (authentication, joining, acknowledgements, errors, notices): msgpack maps
// with a `type` field. Every decoded message is checked field by field, because a control
// frame is the first thing a hostile client gets to send.

import { Packr } from "msgpackr";
import { ErrorCode } from "./codes.ts";
import { ProtocolError } from "./errors.ts";
import { type EventType, isEventType, type ParleyEvent } from "./events.ts";

/** A conversation's role for the current identity: writers edit, observers only read. */
export type Role = "writer" | "observer";

/** Limits the server enforces on this socket, announced after authentication. */
export interface SessionLimits {
  /** Largest frame accepted, in bytes. */
  maxFrameBytes: number;
  /** Largest Yjs update accepted, in bytes. */
  maxUpdateBytes: number;
  /** How many conversations one socket may join at once. */
  maxConversations: number;
}

/** Client → server: present (or renew) the access token. Must be the first frame. */
export interface AuthMessage {
  type: "auth";
  token: string;
  protocol: number;
}
/** Client → server: start receiving a conversation; follow with a sync step 1. */
export interface JoinMessage {
  type: "join";
  conversation: string;
}
/** Client → server: stop receiving a conversation. */
export interface LeaveMessage {
  type: "leave";
  conversation: string;
}
/**
 * Client → server: follow the organisation's event stream (API keys, admins and owners). Events
 * with a cursor after `after` follow in order; without `after`, only events from now on. The
 * server answers `events-subscribed`, then `event` frames; `events-error` ends the subscription.
 */
export interface SubscribeEventsMessage {
  type: "subscribe-events";
  /** The client's name for this subscription (1-64 chars of `[A-Za-z0-9_-]`), echoed in replies. */
  subscription: string;
  /** Resume after this cursor (the last one processed). */
  after?: number;
  /** Only these event types (default: all). */
  types?: EventType[];
}
/** Client → server: stop a subscription (no reply; `event` frames already sent may still arrive). */
export interface UnsubscribeEventsMessage {
  type: "unsubscribe-events";
  subscription: string;
}
/** Every control message a client may send. */
export type ClientControlMessage = AuthMessage | JoinMessage | LeaveMessage | SubscribeEventsMessage | UnsubscribeEventsMessage;

/** Server → client: the token was accepted (first time or renewal). */
export interface AuthOkMessage {
  type: "auth-ok";
  protocol: number;
  session: string;
  user: string;
  org: string;
  /** Token expiry, milliseconds since the epoch: renew before it. */
  expiresAt: number;
  limits: SessionLimits;
}
/** Server → client: the conversation is joined; `seq` is its last committed sequence number. */
export interface JoinedMessage {
  type: "joined";
  conversation: string;
  role: Role;
  seq: number;
}
/** Server → client: the socket no longer receives this conversation (on request or revoked). */
export interface LeftMessage {
  type: "left";
  conversation: string;
  code?: ErrorCode;
  message?: string;
}
/** Server → client: one of this socket's writes is durable, with its sequence number. */
export interface AckMessage {
  type: "ack";
  conversation: string;
  seq: number;
}
/** Server → client: a request failed; nothing it asked for was stored. */
export interface ErrorMessage {
  type: "error";
  code: ErrorCode;
  message: string;
  conversation?: string;
  /** Which kind of client request failed, so a client can match the error to what it sent. */
  request?: "auth" | "join" | "leave" | "write" | "awareness" | "frame";
}
/** Server → client: something the client should know about (shutdown, expiring token). */
export interface NoticeMessage {
  type: "notice";
  kind: "shutting-down" | "token-expiring";
  message: string;
}
/** Server → client: the subscription is live; events with cursors after `cursor` follow. */
export interface EventsSubscribedMessage {
  type: "events-subscribed";
  subscription: string;
  cursor: number;
}
/** Server → client: one event of a subscription, in cursor order, never twice on one subscription. */
export interface EventMessage {
  type: "event";
  subscription: string;
  event: ParleyEvent;
}
/**
 * Server → client: the subscription ended. `EventCursorExpired` means the cursor is older than
 * the retention window: resynchronise through the REST API, then subscribe without `after`.
 */
export interface EventsErrorMessage {
  type: "events-error";
  subscription: string;
  code: ErrorCode;
  message: string;
}
/** Every control message the server may send. */
export type ServerControlMessage =
  | AuthOkMessage
  | JoinedMessage
  | LeftMessage
  | AckMessage
  | ErrorMessage
  | NoticeMessage
  | EventsSubscribedMessage
  | EventMessage
  | EventsErrorMessage;

// Plain msgpack maps (no msgpackr records) so clients in other languages can decode them.
const packr = new Packr({ useRecords: false, mapsAsObjects: true, moreTypes: false });

/** Encodes a control message body as msgpack. */
export function packControl(message: ClientControlMessage | ServerControlMessage): Uint8Array {
  return packr.pack(message);
}

function unpackMap(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch {
    throw new ProtocolError(ErrorCode.MalformedFrame, "control frame is not valid msgpack");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ProtocolError(ErrorCode.MalformedFrame, "control frame must be a map");
  }
  return value as Record<string, unknown>;
}

const CONVERSATION_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;

/** True when `id` is an acceptable conversation id (1–128 chars of letters, digits, `._:-`). */
export function isConversationId(id: unknown): id is string {
  return typeof id === "string" && CONVERSATION_ID.test(id);
}

function conversationField(map: Record<string, unknown>): string {
  const id = map.conversation;
  if (!isConversationId(id)) {
    throw new ProtocolError(ErrorCode.MalformedFrame, "conversation must be 1-128 chars of [A-Za-z0-9._:-]");
  }
  return id;
}

const SUBSCRIPTION_ID = /^[A-Za-z0-9_-]{1,64}$/;

function subscriptionField(map: Record<string, unknown>): string {
  const id = map.subscription;
  if (typeof id !== "string" || !SUBSCRIPTION_ID.test(id)) {
    throw new ProtocolError(ErrorCode.MalformedFrame, "subscription must be 1-64 chars of [A-Za-z0-9_-]");
  }
  return id;
}

function subscribeEvents(map: Record<string, unknown>): SubscribeEventsMessage {
  const message: SubscribeEventsMessage = { type: "subscribe-events", subscription: subscriptionField(map) };
  if (map.after !== undefined && map.after !== null) {
    if (typeof map.after !== "number" || !Number.isSafeInteger(map.after) || map.after < 0) {
      throw new ProtocolError(ErrorCode.MalformedFrame, "subscribe-events.after must be a non-negative integer");
    }
    message.after = map.after;
  }
  if (map.types !== undefined && map.types !== null) {
    if (!Array.isArray(map.types) || map.types.length > 32 || !map.types.every(isEventType)) {
      throw new ProtocolError(ErrorCode.MalformedFrame, "subscribe-events.types must be a list of event types");
    }
    message.types = [...new Set(map.types as EventType[])];
  }
  return message;
}

/** Decodes and validates a control message sent by a client. */
export function unpackClientControl(bytes: Uint8Array): ClientControlMessage {
  const map = unpackMap(bytes);
  switch (map.type) {
    case "auth": {
      if (typeof map.token !== "string" || map.token.length === 0 || map.token.length > 8192) {
        throw new ProtocolError(ErrorCode.MalformedFrame, "auth.token must be a non-empty string");
      }
      if (typeof map.protocol !== "number" || !Number.isInteger(map.protocol)) {
        throw new ProtocolError(ErrorCode.MalformedFrame, "auth.protocol must be an integer");
      }
      return { type: "auth", token: map.token, protocol: map.protocol };
    }
    case "join":
      return { type: "join", conversation: conversationField(map) };
    case "leave":
      return { type: "leave", conversation: conversationField(map) };
    case "subscribe-events":
      return subscribeEvents(map);
    case "unsubscribe-events":
      return { type: "unsubscribe-events", subscription: subscriptionField(map) };
    default:
      throw new ProtocolError(ErrorCode.UnknownMessage, `unknown control message type`);
  }
}

/** Decodes a control message sent by the server. Trusts shape less than content: checks `type`. */
export function unpackServerControl(bytes: Uint8Array): ServerControlMessage {
  const map = unpackMap(bytes);
  switch (map.type) {
    case "auth-ok":
    case "joined":
    case "left":
    case "ack":
    case "error":
    case "notice":
    case "events-subscribed":
    case "event":
    case "events-error":
      return map as unknown as ServerControlMessage;
    default:
      throw new ProtocolError(ErrorCode.UnknownMessage, `unknown control message type`);
  }
}
