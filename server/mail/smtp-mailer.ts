// Sends mail through an SMTP relay with nodemailer, when the operator configures one. Timeouts
// are short so a hung relay fails the request instead of holding it open.

import nodemailer from "nodemailer";
import type { DkimSigning } from "./dkim.ts";
import { assertSendable, assertSender, MailDeliveryError, type Mailer, type MailMessage } from "./mailer.ts";

/** Settings of an {@link SmtpMailer}. */
export interface SmtpMailerOptions {
  host: string;
  port: number;
  /** TLS from the first byte (port 465). When false, STARTTLS is used if the relay offers it. */
  secure: boolean;
  user?: string;
  pass?: string;
  /** The From header, e.g. `Parley <no-reply@example.org>`. */
  from: string;
  /** Refuse to send unless the relay upgrades with STARTTLS (when `secure` is false). Default false. */
  requireTls?: boolean;
  /** Sign every message with this DKIM key (server/mail/dkim.ts). */
  dkim?: DkimSigning;
  /** Milliseconds to connect, to get the greeting, and of socket inactivity. Default 10 s, 10 s, 30 s. */
  timeouts?: { connectMs?: number; greetingMs?: number; socketMs?: number };
}

/** Hands each message to the configured relay; one connection per message. */
export class SmtpMailer implements Mailer {
  private readonly transport: ReturnType<typeof createSmtpTransport>;
  private readonly from: string;
  private readonly relay: string;

  constructor(options: SmtpMailerOptions) {
    assertSender(options.from);
    if ((options.user === undefined) !== (options.pass === undefined)) {
      throw new MailDeliveryError("SMTP user and password must be given together");
    }
    this.from = options.from;
    this.relay = `${options.host}:${options.port}`;
    this.transport = createSmtpTransport(options);
  }

  async send(message: MailMessage): Promise<void> {
    assertSendable(message);
    let rejected: string[];
    try {
      const info = await this.transport.sendMail({
        from: this.from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        html: message.html,
      });
      rejected = info.rejected ?? [];
    } catch (error) {
      // nodemailer's message names the SMTP stage and response, never the body.
      throw new MailDeliveryError(`SMTP relay ${this.relay} did not take the message: ${(error as Error).message}`, {
        cause: error,
      });
    }
    if (rejected.length > 0) throw new MailDeliveryError(`SMTP relay ${this.relay} refused the recipient`);
  }

  /** Releases the transport (open sockets, if any). */
  close(): void {
    this.transport.close();
  }
}

function createSmtpTransport(options: SmtpMailerOptions) {
  return nodemailer.createTransport({
    host: options.host,
    port: options.port,
    secure: options.secure,
    requireTLS: options.requireTls ?? false,
    auth: options.user !== undefined ? { user: options.user, pass: options.pass } : undefined,
    connectionTimeout: options.timeouts?.connectMs ?? 10_000,
    greetingTimeout: options.timeouts?.greetingMs ?? 10_000,
    socketTimeout: options.timeouts?.socketMs ?? 30_000,
    // Message content never points at files or URLs; refuse it if it ever does.
    disableFileAccess: true,
    disableUrlAccess: true,
    dkim: options.dkim,
  });
}
