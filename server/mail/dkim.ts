// DKIM for outgoing mail: the signing settings the mailers hand to nodemailer, a key generator,
// and the DNS records an operator publishes (the DKIM key, and SPF and DMARC examples) so that
// receivers can tell Parley's invitations from forgeries.

import { generateKeyPairSync } from "node:crypto";
import { open, readFile } from "node:fs/promises";

/** What a mailer signs with (nodemailer's `dkim` option). */
export interface DkimSigning {
  /** The signing domain (`d=`), the From address's domain or a parent of it. */
  domainName: string;
  /** The selector (`s=`): the key is published at `<selector>._domainkey.<domain>`. */
  keySelector: string;
  /** PKCS#8 PEM of the RSA private key. */
  privateKey: string;
}

/** One DNS TXT record: its name and its value (the whole string; split into ≤255-byte chunks when published). */
export interface TxtRecord {
  name: string;
  value: string;
}

/** The records to publish for a domain sending with one DKIM key. */
export interface MailDnsRecords {
  dkim: TxtRecord;
  spf: TxtRecord;
  dmarc: TxtRecord;
}

const LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** Throws unless `name` is a DNS name of letters, digits and dashes (what a selector or domain may be). */
export function assertDnsName(name: string, what: string): void {
  const labels = name.split(".");
  if (name.length > 253 || !labels.every((label) => LABEL.test(label))) throw new Error(`${what} "${name}" is not a DNS name`);
}

/** A new 2048-bit RSA key (RSA is what every receiver verifies; Ed25519 DKIM is not yet universal). */
export function generateDkimKey(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  return {
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
  };
}

/** The DKIM record for a public key, with SPF and DMARC examples for the same domain. */
export function mailDnsRecords(domain: string, selector: string, publicKeyPem: string): MailDnsRecords {
  assertDnsName(domain, "domain");
  assertDnsName(selector, "selector");
  const base64 = publicKeyPem.replace(/-----[A-Z ]+-----/g, "").replace(/\s+/g, "");
  return {
    dkim: { name: `${selector}._domainkey.${domain}`, value: `v=DKIM1; k=rsa; p=${base64}` },
    // Replace "mx" with your relay's mechanism (include:…, ip4:…); "-all" refuses everyone else.
    spf: { name: domain, value: "v=spf1 mx -all" },
    // Start with p=none to collect reports, then quarantine or reject; strict alignment for both.
    dmarc: { name: `_dmarc.${domain}`, value: `v=DMARC1; p=quarantine; adkim=s; aspf=s; rua=mailto:dmarc-reports@${domain}` },
  };
}

/** A TXT value as DNS carries it: strings of at most 255 bytes. */
export function txtChunks(value: string): string[] {
  const chunks: string[] = [];
  for (let i = 0; i < value.length; i += 255) chunks.push(value.slice(i, i + 255));
  return chunks;
}

/** The records in zone-file syntax, long values split into quoted chunks. */
export function zoneFileLines(records: MailDnsRecords): string {
  const line = (record: TxtRecord) => `${record.name}. IN TXT ${txtChunks(record.value).map((c) => `"${c}"`).join(" ")}`;
  return [
    "; DKIM: the public key of the selector Parley signs with",
    line(records.dkim),
    "; SPF (example): which hosts may send for the domain; name your relay",
    line(records.spf),
    "; DMARC (example): what receivers do with mail that fails, and where reports go",
    line(records.dmarc),
    "",
  ].join("\n");
}

/** Writes a private key file only the server's user can read; refuses to overwrite one. */
export async function writePrivateKey(file: string, pem: string): Promise<void> {
  const handle = await open(file, "wx", 0o600);
  try {
    await handle.writeFile(pem);
  } finally {
    await handle.close();
  }
}

/** Reads the configured signing key; throws with the file's name if it is missing or not a private key. */
export async function loadDkimSigning(settings: { domain: string; selector: string; keyFile: string }): Promise<DkimSigning> {
  let privateKey: string;
  try {
    privateKey = await readFile(settings.keyFile, "utf8");
  } catch (error) {
    throw new Error(`DKIM key ${settings.keyFile} cannot be read: ${(error as Error).message}`);
  }
  if (!/-----BEGIN (RSA )?PRIVATE KEY-----/.test(privateKey)) throw new Error(`DKIM key ${settings.keyFile} is not a PEM private key`);
  return { domainName: settings.domain, keySelector: settings.selector, privateKey };
}
