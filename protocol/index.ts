// Parley's wire protocol, imported by the server and the client SDK alike (and by nothing that
// needs Node): version, codes, frames, control messages, and the conversation document schema.

export { CloseCode, ErrorCode, shouldReconnect } from "./codes.ts";
export type {
  AckMessage,
  AuthMessage,
  AuthOkMessage,
  ClientControlMessage,
  ErrorMessage,
  EventMessage,
  EventsErrorMessage,
  EventsSubscribedMessage,
  JoinedMessage,
  JoinMessage,
  LeaveMessage,
  LeftMessage,
  NoticeMessage,
  Role,
  ServerControlMessage,
  SessionLimits,
  SubscribeEventsMessage,
  UnsubscribeEventsMessage,
} from "./control.ts";
export { isConversationId, packControl, unpackClientControl, unpackServerControl } from "./control.ts";
export { ProtocolError } from "./errors.ts";
export type { EventActor, EventData, EventType, ParleyEvent } from "./events.ts";
export { EVENT_TYPES, isEventType, isParleyEvent, OPT_IN_EVENT_TYPES } from "./events.ts";
export type { ClientFrame, DocFrame, ServerFrame } from "./frames.ts";
export { decodeClientFrame, decodeServerFrame, encodeControlFrame, encodeDocFrame, FrameType } from "./frames.ts";
export type { ConversationEntry, ConversationMessage, ConversationRetraction, ConversationStatus, ReadMessage } from "./schema.ts";
export {
  appendMessage,
  appendRetraction,
  applyRetractions,
  DocKeys,
  isConversationMessage,
  isConversationRetraction,
  MessageLimits,
  messagesOf,
  notesOf,
  readMessages,
} from "./schema.ts";
export { PROTOCOL_VERSION } from "./version.ts";
export type { DocMessage } from "./ymessages.ts";
export { decodeDocMessage, encodeDocMessage, YMessageType, YSyncType } from "./ymessages.ts";
