// Numbered error codes and WebSocket close codes: the single source of these numbers for the
// server, the SDK and anyone writing their own client. Error codes are shared by socket error
// frames and HTTP error bodies; close codes come in bands that tell a client whether to retry.

/** Stable numeric error codes carried by error frames and HTTP error bodies. */
export const ErrorCode = {
  /** The frame could not be decoded (bad type byte, truncated envelope, bad msgpack). */
  MalformedFrame: 1001,
  /** The frame exceeds the configured maximum frame size. */
  FrameTooLarge: 1002,
  /** The client speaks a protocol version this server does not. */
  UnsupportedVersion: 1003,
  /** A frame other than `auth` arrived before authentication completed. */
  NotAuthenticated: 1004,
  /** The control frame's `type` is not one this server knows. */
  UnknownMessage: 1005,
  /** An HTTP request body or query failed validation; `message` names the field. */
  InvalidRequest: 1006,
  /** The token is missing, malformed, forged, or signed with a disallowed algorithm. */
  InvalidToken: 2001,
  /** The token's `exp` has passed. */
  TokenExpired: 2002,
  /** No `auth` frame arrived within the authentication deadline. */
  AuthTimeout: 2003,
  /** A re-authentication tried to switch the socket to another identity. */
  IdentityChanged: 2004,
  /** Email or password (or API key) not recognised. */
  InvalidCredentials: 2005,
  /** The account has two-factor authentication: send a TOTP or recovery code too. */
  TwoFactorRequired: 2006,
  /** The TOTP or recovery code is wrong, expired or already used. */
  InvalidTwoFactorCode: 2007,
  /** The organisation requires two-factor authentication; enrol first. */
  TwoFactorEnrolmentRequired: 2008,
  /** The password is too short, too long, too common or too weak (see `problems`). */
  WeakPassword: 2009,
  /** The refresh token is unknown, expired, revoked, or was already used (family revoked). */
  InvalidRefreshToken: 2010,
  /** The invitation link is unknown, expired or revoked. */
  InvitationInvalid: 2011,
  /** The invitation is used from a new device: send the code emailed to the invited address. */
  DeviceCodeRequired: 2012,
  /** The sign-up confirmation link is unknown, expired or already used: sign up again (or sign in). */
  SignupLinkInvalid: 2013,
  /** The token does not grant access to this conversation (or it does not exist for you). */
  Forbidden: 3001,
  /** The caller may read this conversation but not write to it (observer). */
  ReadOnly: 3002,
  /** A document frame named a conversation this socket has not joined. */
  NotJoined: 3003,
  /** The socket has joined as many conversations as the server allows. */
  TooManyConversations: 3004,
  /** No such resource (or none visible to you). */
  NotFound: 3005,
  /** The resource already exists (e.g. an account with this email). */
  Conflict: 3006,
  /** The request comes from an address outside the organisation's allowlist. */
  IpNotAllowed: 3007,
  /** The request's Origin is not in the configured allowlist. */
  OriginNotAllowed: 3008,
  /** Your role does not allow this action (e.g. members managing API keys). */
  InsufficientRole: 3009,
  /**
   * The event cursor is older than the retention window (or unknown): events after it are gone.
   * Resynchronise through the REST API, then follow the stream from now (no cursor).
   */
  EventCursorExpired: 3010,
  /** The Yjs update could not be decoded. */
  InvalidUpdate: 4001,
  /** The Yjs update exceeds the configured maximum update size. */
  UpdateTooLarge: 4002,
  /**
   * The update adds to, changes or deletes from `messages` what the rules forbid: anything but a
   * plain message or retraction entry authored by the sender, appended; or deletes an entry.
   */
  InvalidMessage: 4003,
  /** The update writes under a Yjs client id another writer in this conversation already uses. */
  ClientIdTaken: 4004,
  /** The document would exceed its nesting depth, item count or size limit. */
  DocumentLimit: 4005,
  /**
   * The update would not merge or apply cleanly for every client (an empty delete range, a gap,
   * a reference to content that does not exist, rewriting stored content).
   */
  UnmergeableUpdate: 4006,
  /** Unexpected server failure; nothing was stored. Safe to retry. */
  Internal: 5001,
  /** The store could not commit; nothing was acknowledged. Safe to retry. */
  StoreUnavailable: 5002,
  /** The server is shutting down; reconnect (to another node) and retry. */
  ShuttingDown: 5003,
  /** Too many messages or bytes in a short time. Slow down. */
  RateLimited: 5004,
  /**
   * The stored conversation content is nested deeper or is larger than the server reads or
   * serialises (content an older server accepted): this read fails, nothing changed, the server
   * keeps serving. Restoring the conversation to an earlier point repairs it.
   */
  ContentTooComplex: 5005,
  /**
   * The server is saturated and sheds writes for a moment; nothing was stored. Retry after a
   * backoff (y-websocket clients get close 1013 instead, and resync on reconnect).
   */
  Overloaded: 5006,
} as const;
/** One of the numeric values of {@link ErrorCode}. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/**
 * WebSocket close codes. Bands: 4400–4499 means "do not reconnect" (the same request would fail
 * again); 1011, 1012, 1013 and 4500–4599 mean "reconnect with backoff". Anything else that is not a
 * clean 1000 close is treated as a transient network failure (reconnect).
 */
export const CloseCode = {
  /** Clean close requested by either side. */
  Normal: 1000,
  /** Unexpected server condition. */
  InternalError: 1011,
  /** The server is restarting (graceful shutdown). */
  ServiceRestart: 1012,
  /** The server is overloaded or a dependency is down. */
  TryAgainLater: 1013,
  /** The peer broke the protocol (malformed frame, frame before auth, too many bytes pre-auth). */
  ProtocolViolation: 4400,
  /** Authentication failed: invalid, forged, expired or `alg: none` token. */
  AuthFailed: 4401,
  /** The identity may no longer use this server (revoked). */
  Forbidden: 4403,
  /** The client's protocol version is not supported. */
  UnsupportedVersion: 4406,
  /** A frame exceeded the maximum frame size. */
  FrameTooLarge: 4413,
  /** No authentication arrived in time; a slow token provider may succeed on retry. */
  AuthTimeout: 4500,
  /** The session's token expired without being renewed; reconnect with a fresh token. */
  SessionExpired: 4501,
  /** The client read too slowly and the server's send buffer hit its limit; resync on reconnect. */
  SlowConsumer: 4508,
  /** The client sent too much too fast. */
  RateLimited: 4529,
} as const;
/** One of the numeric values of {@link CloseCode}. */
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

/** True when a client should reconnect (with backoff) after a close with this code. */
export function shouldReconnect(code: number): boolean {
  if (code === CloseCode.Normal) return false;
  return !(code >= 4400 && code <= 4499);
}
