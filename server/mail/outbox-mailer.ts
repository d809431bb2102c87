// The embedded default mailer: each message becomes an RFC 5322 `.eml` file in an outbox folder
// (readable only by the server's user) and one log line says who it is for and what about, so an
// operator without SMTP can still hand out invitation links. The body is never logged.

import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, stat, unlink } from "node:fs/promises";
import path from "node:path";
import nodemailer from "nodemailer";
import type { DkimSigning } from "./dkim.ts";
import { assertSendable, assertSender, type MailLog, type Mailer, type MailMessage } from "./mailer.ts";
import { type Clock, systemClock } from "../platform/clock.ts";

/** Settings of an {@link OutboxMailer}. */
export interface OutboxMailerOptions {
  /** The From header; default `Parley <parley@localhost>`. */
  from?: string;
  /** Sign every message with this DKIM key, as the SMTP mailer would (the .eml shows the header). */
  dkim?: DkimSigning;
  /** How long a message stays in the outbox (ms); default 30 days. */
  retentionMs?: number;
  /** The clock file names are stamped by (the server's; default: the system's). */
  now?: Clock;
}

const DEFAULT_RETENTION_MS = 30 * 24 * 3_600_000;

/**
 * The tag a message about a conversation carries in its file name: a hash, so the outbox's
 * listing does not name conversations, and the copies of a destroyed one can still be found.
 */
function conversationTag(conversationId: string): string {
  return createHash("sha256").update(`parley-outbox:${conversationId}`).digest("hex").slice(0, 16);
}

/** Writes each message as `<time>-<random>.eml` (mode 0600) into `dir`. */
export class OutboxMailer implements Mailer {
  private readonly from: string;
  private readonly retentionMs: number;
  private readonly now: Clock;
  // nodemailer's stream transport only composes the MIME text (encodings, folding, multipart).
  private readonly composer: ReturnType<typeof nodemailer.createTransport>;
  private ready: Promise<unknown> | undefined;

  constructor(
    private readonly dir: string,
    private readonly logger: MailLog,
    options: OutboxMailerOptions = {},
  ) {
    this.from = options.from ?? "Parley <parley@localhost>";
    this.retentionMs = options.retentionMs ?? DEFAULT_RETENTION_MS;
    this.now = options.now ?? systemClock;
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
    const stamp = new Date(this.now()).toISOString().replace(/[:.]/g, "-");
    const tag = message.conversationId === undefined ? "" : `.c${conversationTag(message.conversationId)}`;
    const name = `${stamp}-${randomBytes(6).toString("hex")}${tag}.eml`;
    const handle = await open(path.join(this.dir, name), "wx", 0o600);
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    // Only the file: the recipient's address and the subject (names, titles) are personal data.
    this.logger.info({ file: name }, "mail written to outbox");
  }

  async forgetConversation(conversationId: string): Promise<number> {
    const tag = `.c${conversationTag(conversationId)}.eml`;
    return this.removeWhere((name) => name.endsWith(tag));
  }

  async prune(now: number): Promise<number> {
    let removed = 0;
    for (const name of await this.names()) {
      const file = path.join(this.dir, name);
      const modified = await stat(file).then((s) => s.mtimeMs, () => null);
      if (modified !== null && now - modified > this.retentionMs && (await this.remove(file))) removed++;
    }
    return removed;
  }

  private async names(): Promise<string[]> {
    try {
      return (await readdir(this.dir)).filter((name) => name.endsWith(".eml"));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
  }

  private async removeWhere(matches: (name: string) => boolean): Promise<number> {
    let removed = 0;
    for (const name of (await this.names()).filter(matches)) if (await this.remove(path.join(this.dir, name))) removed++;
    return removed;
  }

  private async remove(file: string): Promise<boolean> {
    return unlink(file).then(
      () => true,
      (error: NodeJS.ErrnoException) => {
        if (error.code === "ENOENT") return false;
        throw error;
      },
    );
  }
}
