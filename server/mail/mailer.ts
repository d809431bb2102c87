// The seam for outgoing email (invitation links, sign-in codes): one `Mailer` interface, an
// outbox folder as the embedded default (outbox-mailer.ts) and SMTP when configured
// (smtp-mailer.ts). Messages are checked here so no transport can be used for header injection.

/** One plain message to one person. `text` may hold sign-in links: never log it. */
export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  html?: string;
  /** The conversation the message is about (an invitation): a kept copy goes when it is destroyed. */
  conversationId?: string;
}

/** Sends email; resolves once the message is handed off (written or accepted by the relay). */
export interface Mailer {
  send(message: MailMessage): Promise<void>;
  /** Removes kept copies of messages about a destroyed conversation (mailers that keep none omit it). */
  forgetConversation?(conversationId: string): Promise<number>;
  /** Removes kept copies older than the mail retention (mailers that keep none omit it). */
  prune?(now: number): Promise<number>;
}

/** What a mailer logs with: a pino logger fits. */
export interface MailLog {
  info(fields: Record<string, unknown>, message: string): void;
}

/** The message cannot be sent as given (bad recipient or subject); nothing was sent. */
export class MailMessageError extends Error {
  override readonly name = "MailMessageError";
}

/** The transport failed to take the message (relay down, recipient refused). */
export class MailDeliveryError extends Error {
  override readonly name = "MailDeliveryError";
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse.
const CONTROL = /[\u0000-\u001f\u007f]/;
/**
 * One bare address (`local@domain`), nothing that an address parser could read as a second
 * recipient or a display name: no whitespace, commas, semicolons, angle brackets or quotes.
 */
const PLAIN_ADDRESS = /^[^\s@,;:<>()[\]\\"]+@[^\s@,;:<>()[\]\\"]+$/;
const MAX_ADDRESS_LENGTH = 254;

/** Throws {@link MailMessageError} unless the address is one plain address. */
export function assertPlainAddress(address: string, field: string): void {
  if (CONTROL.test(address)) throw new MailMessageError(`${field} contains a line break or control character`);
  if (address.length > MAX_ADDRESS_LENGTH || !PLAIN_ADDRESS.test(address)) {
    throw new MailMessageError(`${field} is not a single plain email address`);
  }
}

/**
 * Refuses a message whose recipient or subject could smuggle extra headers or recipients (a CR
 * or LF in a header ends it and starts another, e.g. a Bcc to an attacker).
 */
export function assertSendable(message: MailMessage): void {
  assertPlainAddress(message.to, "recipient");
  if (CONTROL.test(message.subject)) throw new MailMessageError("subject contains a line break or control character");
  if (message.subject.trim() === "") throw new MailMessageError("subject is empty");
}

/** A `From` value: a plain address, optionally with a display name (`Parley <no-reply@x.org>`). */
export function assertSender(from: string): void {
  if (CONTROL.test(from)) throw new MailMessageError("sender contains a line break or control character");
  const named = /^[^<>"\\]*<([^<>]+)>$/.exec(from);
  assertPlainAddress(named ? named[1] : from, "sender");
}
