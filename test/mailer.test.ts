// Outgoing mail: without SMTP each message lands as an .eml file in the outbox with one log line
// that never contains the body; with SMTP it reaches a real SMTP server. Neither can be used to
// inject headers or extra recipients.

import { mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../server/platform/logger.ts";
import { MailDeliveryError, type MailMessage, MailMessageError } from "../server/mail/mailer.ts";
import { OutboxMailer } from "../server/mail/outbox-mailer.ts";
import { SmtpMailer } from "../server/mail/smtp-mailer.ts";
import { type SmtpSink, startSmtpSink } from "./helpers/smtp-sink.ts";

const LINK = `https://parley.example/invitations/${"k".repeat(43)}?conversation=${"c".repeat(40)}`;
const INVITATION: MailMessage = {
  to: "supplier@vendor.example",
  subject: "Acme invites you to a conversation",
  text: `Open the conversation:\n\n${LINK}\n\nThe link is valid for 14 days.`,
};

/** Header-injection and multi-recipient attempts; each must be refused before anything is sent. */
const HOSTILE: MailMessage[] = [
  { ...INVITATION, subject: "Hello\r\nBcc: attacker@evil.example" },
  { ...INVITATION, subject: "Hello\nBcc: attacker@evil.example" },
  { ...INVITATION, to: "supplier@vendor.example\r\nBcc: attacker@evil.example" },
  { ...INVITATION, to: "supplier@vendor.example, attacker@evil.example" },
  { ...INVITATION, to: "Supplier <attacker@evil.example>" },
  { ...INVITATION, to: "not an address" },
  { ...INVITATION, subject: "   " },
];

function captureLog() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString("utf8").split("\n").filter(Boolean));
      done();
    },
  });
  return { logger: createLogger("info", destination), lines };
}

describe("OutboxMailer", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), "parley-outbox-"));
  });
  afterEach(async () => {
    await rm(path.join(dir, "outbox"), { recursive: true, force: true });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes the message as an .eml file only the server's user can read", async () => {
    const { logger } = captureLog();
    const outbox = path.join(dir, "outbox");
    await new OutboxMailer(outbox, logger).send(INVITATION);
    const files = await readdir(outbox);
    expect(files).toHaveLength(1);
    expect(files[0]).toMatch(/\.eml$/);
    expect((await stat(path.join(outbox, files[0]))).mode & 0o777).toBe(0o600);
    expect((await stat(outbox)).mode & 0o777).toBe(0o700);
    const eml = await readFile(path.join(outbox, files[0]), "utf8");
    expect(eml).toMatch(/^From: Parley <parley@localhost>\r$/m);
    expect(eml).toMatch(/^To: supplier@vendor\.example\r$/m);
    expect(eml).toMatch(/^Subject: Acme invites you to a conversation\r$/m);
    expect(eml).toMatch(/^Message-ID: <.+>\r$/m);
    expect(eml).toMatch(/^Date: .+\r$/m);
    // Lines end in CRLF, as RFC 5322 requires.
    expect(eml.replace(/\r\n/g, "")).not.toMatch(/\n/);
  });

  it("logs one line naming the file, never the recipient's address, the subject or the body with its sign-in link", async () => {
    const { logger, lines } = captureLog();
    await new OutboxMailer(path.join(dir, "outbox"), logger).send(INVITATION);
    expect(lines).toHaveLength(1);
    const entry = JSON.parse(lines[0]) as Record<string, unknown>;
    expect(entry).toMatchObject({ file: expect.stringMatching(/\.eml$/), msg: "mail written to outbox" });
    expect(lines[0]).not.toContain(INVITATION.to);
    expect(lines[0]).not.toContain(INVITATION.subject);
    expect(lines[0]).not.toContain("invitations/");
    expect(lines[0]).not.toContain("14 days");
  });

  it("writes one file per message, with an HTML alternative when given", async () => {
    const { logger } = captureLog();
    const outbox = path.join(dir, "outbox");
    const mailer = new OutboxMailer(outbox, logger, { from: "Acme via Parley <no-reply@parley.example>" });
    await mailer.send(INVITATION);
    await mailer.send({ ...INVITATION, html: `<p><a href="${LINK}">Open</a></p>` });
    const files = (await readdir(outbox)).sort();
    expect(files).toHaveLength(2);
    const contents = await Promise.all(files.map((f) => readFile(path.join(outbox, f), "utf8")));
    const html = contents.find((c) => c.includes("multipart/alternative"));
    expect(html).toBeDefined();
    expect(html).toContain("text/html");
    expect(contents[0]).toMatch(/^From: Acme via Parley <no-reply@parley\.example>\r$/m);
  });

  it("refuses header injection and extra recipients, writing nothing", async () => {
    const { logger, lines } = captureLog();
    const outbox = path.join(dir, "outbox");
    const mailer = new OutboxMailer(outbox, logger);
    for (const message of HOSTILE) await expect(mailer.send(message)).rejects.toThrow(MailMessageError);
    await expect(readdir(outbox)).rejects.toMatchObject({ code: "ENOENT" });
    expect(lines).toHaveLength(0);
  });

  it("keeps copies no longer than its retention, and none of a destroyed conversation's mail", async () => {
    const { logger } = captureLog();
    const outbox = path.join(dir, "outbox");
    const mailer = new OutboxMailer(outbox, logger, { retentionMs: 3_600_000 });
    const about = (conversationId: string | undefined, subject: string): MailMessage => ({ to: "sam@supplier.example", subject, text: "a link", conversationId });
    await mailer.send(about("conv-doomed", "doomed invitation"));
    await mailer.send(about("conv-kept", "kept invitation"));
    await mailer.send(about(undefined, "sign-in code"));
    const names = await readdir(outbox);
    expect(names.join(" ")).not.toContain("conv-");
    expect(await mailer.forgetConversation("conv-doomed")).toBe(1);
    const left = await Promise.all((await readdir(outbox)).map((n) => readFile(path.join(outbox, n), "utf8")));
    expect(left.some((m) => m.includes("doomed invitation"))).toBe(false);
    expect(left).toHaveLength(2);
    // An hour later nothing is old enough; two hours later everything is.
    expect(await mailer.prune(Date.now() + 1000)).toBe(0);
    expect(await mailer.prune(Date.now() + 2 * 3_600_000)).toBe(2);
    expect(await readdir(outbox)).toEqual([]);
  });

  it("refuses a sender with a line break at construction", () => {
    const { logger } = captureLog();
    expect(() => new OutboxMailer(dir, logger, { from: "Parley <a@b.example>\r\nBcc: x@evil.example" })).toThrow(
      MailMessageError,
    );
  });
});

describe("SmtpMailer", () => {
  let sink: SmtpSink;
  let mailer: SmtpMailer;
  beforeAll(async () => {
    sink = await startSmtpSink();
    mailer = new SmtpMailer({ host: sink.host, port: sink.port, secure: false, from: "Parley <no-reply@parley.example>" });
  });
  afterAll(async () => {
    mailer.close();
    await sink.close();
  });

  it("delivers to the SMTP server, which sees recipient, subject and the whole link", async () => {
    await mailer.send(INVITATION);
    const mail = await sink.waitFor((m) => m.to.includes(INVITATION.to));
    expect(mail.subject).toBe(INVITATION.subject);
    expect(mail.from).toBe("no-reply@parley.example");
    expect(mail.headers.get("from")).toBe("Parley <no-reply@parley.example>");
    // The link is longer than a mail line may be: the raw message wraps it, decoding rejoins it.
    expect(mail.raw).not.toContain(LINK);
    expect(mail.text).toContain(LINK);
    expect(mail.raw).toContain("Subject: Acme invites you to a conversation");
  });

  it("carries a non-ASCII subject and body, and an HTML alternative", async () => {
    await mailer.send({
      to: "jose@vendor.example",
      subject: "Uitnodiging: gesprek over bestelling #42 — José",
      text: `Beste José,\n\n${LINK}`,
      html: `<p>Beste José, <a href="${LINK}">open</a></p>`,
    });
    const mail = await sink.waitFor((m) => m.to.includes("jose@vendor.example"));
    expect(mail.subject).toBe("Uitnodiging: gesprek over bestelling #42 — José");
    expect(mail.text).toContain("Beste José,");
    expect(mail.text).toContain(LINK);
    expect(mail.html).toContain(`href="${LINK}"`);
  });

  it("lets a test wait for a message that has not arrived yet", async () => {
    const waiting = sink.waitFor((m) => m.to.includes("late@vendor.example"), 5_000);
    await mailer.send({ ...INVITATION, to: "late@vendor.example" });
    expect((await waiting).subject).toBe(INVITATION.subject);
    await expect(sink.waitFor((m) => m.to.includes("nobody@vendor.example"), 50)).rejects.toThrow(/no matching mail/);
  });

  it("refuses header injection and extra recipients before talking to the server", async () => {
    const before = sink.messages.length;
    for (const message of HOSTILE) await expect(mailer.send(message)).rejects.toThrow(MailMessageError);
    expect(sink.messages.length).toBe(before);
  });

  it("reports a relay that cannot be reached as a delivery error", async () => {
    // A port that was free a moment ago: nothing listens there.
    const port = await new Promise<number>((resolve) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const address = probe.address();
        probe.close(() => resolve(typeof address === "object" && address ? address.port : 0));
      });
    });
    const unreachable = new SmtpMailer({ host: "127.0.0.1", port, secure: false, from: "no-reply@parley.example" });
    await expect(unreachable.send(INVITATION)).rejects.toThrow(MailDeliveryError);
    unreachable.close();
  });
});
