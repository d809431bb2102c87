// A real SMTP server for tests: listens on 127.0.0.1 on an ephemeral port, accepts any message
// without authentication or TLS, and keeps what it received (envelope, decoded subject and text,
// raw source) so a test can wait for an invitation and follow its link.

import type { AddressInfo } from "node:net";
import { SMTPServer } from "smtp-server";
import { addMailSource } from "./mailboxes.ts";
import { type CapturedMail, parseMail } from "./mime-reader.ts";
import { Waiters } from "./wait.ts";

export type { CapturedMail };

/** A running sink. */
export interface SmtpSink {
  host: string;
  port: number;
  /** Everything received so far, oldest first. */
  readonly messages: readonly CapturedMail[];
  /** The first message (already received or arriving later) that matches, or a timeout error. */
  waitFor(predicate: (mail: CapturedMail) => boolean, timeoutMs?: number): Promise<CapturedMail>;
  close(): Promise<void>;
}

/** Starts a sink; `close()` it in afterAll/afterEach. */
export async function startSmtpSink(): Promise<SmtpSink> {
  const messages: CapturedMail[] = [];
  const waiters = new Waiters();

  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ["AUTH", "STARTTLS"],
    logger: false,
    closeTimeout: 1_000,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", callback);
      stream.on("end", () => {
        const envelope = session.envelope;
        const mail = parseMail(
          Buffer.concat(chunks).toString("utf8"),
          envelope.mailFrom ? envelope.mailFrom.address : "",
          envelope.rcptTo.map((rcpt) => rcpt.address),
        );
        messages.push(mail);
        waiters.notify();
        callback();
      });
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.server.address() as AddressInfo;
  // The sign-up helper finds its confirmation link here too.
  const removeSource = addMailSource(async () => messages.map((m, i) => ({ id: `smtp:${port}:${i}`, to: m.to, subject: m.subject, text: m.text })));

  return {
    host: "127.0.0.1",
    port,
    messages,
    waitFor(predicate, timeoutMs = 5_000) {
      return waiters.until(
        () => messages.find(predicate),
        timeoutMs,
        () => `no matching mail within ${timeoutMs} ms (received: ${messages.map((m) => `${m.to.join(",")}: ${m.subject}`).join("; ") || "none"})`,
      );
    },
    close() {
      removeSource();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
