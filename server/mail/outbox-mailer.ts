// The embedded default mailer: each message becomes an RFC 5322 `.eml` file in an outbox folder
// (readable only by the server's user) and one log line says who it is for and what about, so an
// operator without SMTP can still hand out invitation links. The body is never logged.

import { randomBytes } from "node:crypto";
import { mkdir, open } from "node:fs/promises";
import path from "node:path";
import nodemailer from "nodemailer";
import type { DkimSigning } from "./dkim.ts";
import { assertSendable, assertSender, type MailLog, type Mailer, type MailMessage } from "./mailer.ts";

/** Settings of an {@link OutboxMailer}. */
export interface OutboxMailerOptions {
  /** The From header; default `Parley <parley@localhost>`. */
  from?: string;
  /** Sign every message with this DKIM key, as the SMTP mailer would (the .eml shows the header). */
  dkim?: DkimSigning;
}

/** Writes each message as `<time>-<random>.eml` (mode 0600) into `dir`. */
export class OutboxMailer implements Mailer {
  private readonly from: string;
  // nodemailer's stream transport only composes the MIME text (encodings, folding, multipart).
  private readonly composer: ReturnType<typeof nodemailer.createTransport>;
  private ready: Promise<unknown> | undefined;

  constructor(
    private readonly dir: string,
    private readonly logger: MailLog,
    options: OutboxMailerOptions = {},
  ) {
    this.from = options.from ?? "Parley <parley@localhost>";
    assertSender(this.from);
    this.composer = nodemailer.createTransport({
      streamTransport: true,
      buffer: true,
      newline: "windows",
      disableFileAccess: true,
      disableUrlAccess: true,
      dkim: options.dkim,
    });
  }

  async send(message: MailMessage): Promise<void> {
    assertSendable(message);
    this.ready ??= mkdir(this.dir, { recursive: true, mode: 0o700 });
    await this.ready;
    const info = await this.composer.sendMail({
      from: this.from,
      to: message.to,
      subject: message.subject,
      text: message.text,
      html: message.html,
    });
    const content = info.message;
    if (!Buffer.isBuffer(content)) throw new Error("nodemailer did not return the composed message");
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const name = `${stamp}-${randomBytes(6).toString("hex")}.eml`;
    const handle = await open(path.join(this.dir, name), "wx", 0o600);
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    // Only the file: the recipient's address and the subject (names, titles) are personal data.
    this.logger.info({ file: name }, "mail written to outbox");
  }
}
