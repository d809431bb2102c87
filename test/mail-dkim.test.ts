// Signed mail: `parley mail dkim-keygen` makes a key and prints the DNS records to publish; a
// server configured with it signs every message it sends, and a DKIM verifier (mailauth) that
// looks the key up in those records finds the signature valid, and invalid once the message is
// changed or the record holds another key.

import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { dkimVerify } from "mailauth/lib/dkim/verify.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "../server/platform/config.ts";
import { generateDkimKey, loadDkimSigning, mailDnsRecords } from "../server/mail/dkim.ts";
import { SmtpMailer } from "../server/mail/smtp-mailer.ts";
import { apiClient } from "./helpers/http-client.ts";
import { runParley } from "./helpers/parley-cli.ts";
import { startTestServer, type TestServer } from "./helpers/server.ts";
import { signUp } from "./helpers/sign-up.ts";
import { type SmtpSink, startSmtpSink } from "./helpers/smtp-sink.ts";

const DOMAIN = "parley.example";
let dir: string;
let sink: SmtpSink;
let server: TestServer;
let printed: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "parley-dkim-"));
  sink = await startSmtpSink();
});
afterAll(async () => {
  await server?.cleanup();
  await sink.close();
  await rm(dir, { recursive: true, force: true });
});

/** TXT records as the zone-file lines print them: name → the value, its quoted chunks joined. */
function parseZone(text: string): Map<string, string> {
  const records = new Map<string, string>();
  for (const line of text.split("\n")) {
    const match = /^(\S+)\. IN TXT (.+)$/.exec(line);
    if (match) records.set(match[1], [...match[2].matchAll(/"([^"]*)"/g)].map((m) => m[1]).join(""));
  }
  return records;
}

/** A DNS resolver that knows only `records` (what the operator published). */
function resolverFor(records: Map<string, string>) {
  return async (name: string, type: string) => {
    const value = records.get(name);
    if (type !== "TXT" || value === undefined) throw Object.assign(new Error(`no ${type} for ${name}`), { code: "ENOTFOUND" });
    return [value.match(/.{1,255}/g) ?? []];
  };
}

async function verdict(raw: string, records: Map<string, string>) {
  const result = await dkimVerify(Buffer.from(raw), { resolver: resolverFor(records) });
  return result.results.map((r) => ({ result: r.status.result, domain: r.signingDomain, selector: r.selector }));
}

describe("DKIM", () => {
  it("generates a key only the server's user can read and prints the DKIM, SPF and DMARC records", async () => {
    const keyFile = path.join(dir, "dkim.pem");
    const run = await runParley(["mail", "dkim-keygen", "--domain", DOMAIN, "--out", keyFile, "--data-dir", dir]);
    expect(run.code).toBe(0);
    expect((await stat(keyFile)).mode & 0o777).toBe(0o600);
    printed = run.stdout;
    const records = parseZone(printed);
    expect(records.get(`parley._domainkey.${DOMAIN}`)).toMatch(/^v=DKIM1; k=rsa; p=[A-Za-z0-9+/=]{300,}$/);
    expect(records.get(DOMAIN)).toMatch(/^v=spf1 .* -all$/);
    expect(records.get(`_dmarc.${DOMAIN}`)).toMatch(/^v=DMARC1; p=quarantine; adkim=s; aspf=s/);
    // Long values are published as several quoted strings of at most 255 characters.
    expect(printed).toMatch(/"v=DKIM1; k=rsa; p=[^"]{200,255}" "/);
  }, 120_000);

  it("never overwrites a key, prints the records of an existing one again, and refuses a bad domain", async () => {
    const keyFile = path.join(dir, "dkim.pem");
    expect((await runParley(["mail", "dkim-keygen", "--domain", DOMAIN, "--out", keyFile, "--data-dir", dir])).code).toBe(2);
    const again = await runParley(["mail", "dkim-records", "--domain", DOMAIN, "--key", keyFile, "--data-dir", dir]);
    expect(again.code).toBe(0);
    expect(again.stdout).toBe(printed);
    expect((await runParley(["mail", "dkim-keygen", "--domain", "bad domain", "--data-dir", dir])).code).toBe(2);
  }, 120_000);

  it("signs the invitations a configured server sends; the signature verifies against the published key", async () => {
    server = await startTestServer({
      env: {
        PARLEY_SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
        PARLEY_MAIL_FROM: `Parley <no-reply@${DOMAIN}>`,
        PARLEY_DKIM_DOMAIN: DOMAIN,
        PARLEY_DKIM_KEY_FILE: path.join(dir, "dkim.pem"),
      },
    });
    const api = apiClient(server.httpUrl);
    const owner = await signUp(api, "ann@helpdesk.example", "Helpdesk");
    const created = await api("POST", "/v1/conversations", {
      token: owner.token,
      body: { title: "Boiler", invitations: [{ email: "sam@supplier.example" }] },
    });
    expect(created.status).toBe(201);
    const mail = await sink.waitFor((m) => m.to.includes("sam@supplier.example"));
    expect(mail.headers.get("dkim-signature")).toMatch(new RegExp(`d=${DOMAIN.replace(".", "\\.")};.*s=parley`));
    const published = parseZone(printed);
    expect(await verdict(mail.raw, published)).toEqual([{ result: "pass", domain: DOMAIN, selector: "parley" }]);

    // Changed in transit: the body hash no longer matches (RFC 6376 calls that "neutral": not a pass).
    const tampered = mail.raw.replace(/invite\/[A-Za-z0-9_-]+/, "invite/phished");
    expect(tampered).not.toBe(mail.raw);
    expect((await verdict(tampered, published))[0].result).toMatch(/^(fail|neutral)$/);
    const forgedSubject = mail.raw.replace(/^Subject: .*$/m, "Subject: Urgent: reset your password");
    expect((await verdict(forgedSubject, published))[0].result).toBe("fail");
    // A forger's key in DNS (or a key that was rotated away) does not verify it either.
    const other = mailDnsRecords(DOMAIN, "parley", generateDkimKey().publicKeyPem);
    expect((await verdict(mail.raw, new Map([[other.dkim.name, other.dkim.value]])))[0].result).toBe("fail");
  });

  it("signs with the SMTP mailer directly, and sends unsigned mail only when DKIM is not configured", async () => {
    const signing = await loadDkimSigning({ domain: DOMAIN, selector: "parley", keyFile: path.join(dir, "dkim.pem") });
    const mailer = new SmtpMailer({ host: sink.host, port: sink.port, secure: false, from: `Parley <no-reply@${DOMAIN}>`, dkim: signing });
    await mailer.send({ to: "direct@x.example", subject: "Ünïcode subject", text: "Hello — with a long line ".repeat(20) });
    mailer.close();
    const signed = await sink.waitFor((m) => m.to.includes("direct@x.example"));
    expect((await verdict(signed.raw, parseZone(printed)))[0].result).toBe("pass");
    const plain = new SmtpMailer({ host: sink.host, port: sink.port, secure: false, from: `Parley <no-reply@${DOMAIN}>` });
    await plain.send({ to: "plain@x.example", subject: "Plain", text: "unsigned" });
    plain.close();
    expect((await sink.waitFor((m) => m.to.includes("plain@x.example"))).headers.has("dkim-signature")).toBe(false);
  });

  it("refuses a DKIM domain that does not align with the From address, and a missing key file", async () => {
    expect(() => loadConfig({ PARLEY_DKIM_DOMAIN: DOMAIN, PARLEY_MAIL_FROM: "Parley <no-reply@elsewhere.example>" })).toThrow(ConfigError);
    expect(() => loadConfig({ PARLEY_DKIM_DOMAIN: DOMAIN, PARLEY_MAIL_FROM: `x@mail.${DOMAIN}` })).not.toThrow();
    expect(() => loadConfig({ PARLEY_DKIM_KEY_FILE: "/x.pem" })).toThrow(/need PARLEY_DKIM_DOMAIN/);
    await expect(loadDkimSigning({ domain: DOMAIN, selector: "parley", keyFile: path.join(dir, "missing.pem") })).rejects.toThrow(/cannot be read/);
  });
});
