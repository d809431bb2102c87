// A small MIME reader, enough for what nodemailer produces: the headers, and the text and HTML
// bodies transfer-decoded, so a test reads a mail (from the SMTP sink or an outbox file) as a
// person would and can follow its links.

/** One message as received. */
export interface CapturedMail {
  /** Envelope sender (MAIL FROM). */
  from: string;
  /** Envelope recipients (RCPT TO). */
  to: string[];
  /** The Subject header, MIME-decoded. */
  subject: string;
  /** The text/plain body, transfer-decoded (quoted-printable soft breaks joined), so links are whole. */
  text: string;
  /** The text/html body, transfer-decoded, if there is one. */
  html: string | undefined;
  /** Header names in lower case → first value, unfolded and MIME-decoded. */
  headers: Map<string, string>;
  /** The message source exactly as transmitted (CRLF line ends). */
  raw: string;
}

/** Reads one message's source (as an SMTP relay received it, or an outbox .eml file). */
export function parseMail(raw: string, from: string, to: string[]): CapturedMail {
  const { headers, body } = splitEntity(raw);
  const bodies: { text?: string; html?: string } = {};
  collectBodies(headers, body, bodies);
  return {
    from,
    to,
    subject: headers.get("subject") ?? "",
    text: bodies.text ?? "",
    html: bodies.html,
    headers,
    raw,
  };
}

function splitEntity(source: string): { headers: Map<string, string>; body: string } {
  const match = /\r?\n\r?\n/.exec(source);
  const head = match ? source.slice(0, match.index) : source;
  const body = match ? source.slice(match.index + match[0].length) : "";
  const headers = new Map<string, string>();
  // Unfold: a line starting with whitespace continues the previous header.
  for (const line of head.replace(/\r?\n(?=[ \t])/g, "").split(/\r?\n/)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    if (!headers.has(name)) headers.set(name, decodeWords(line.slice(colon + 1).trim()));
  }
  return { headers, body };
}

function collectBodies(headers: Map<string, string>, body: string, into: { text?: string; html?: string }): void {
  const contentType = (headers.get("content-type") ?? "text/plain").toLowerCase();
  if (contentType.startsWith("multipart/")) {
    const boundary = /boundary="?([^";]+)"?/i.exec(headers.get("content-type") ?? "")?.[1];
    if (!boundary) return;
    const parts = body.split(`--${boundary}`).slice(1);
    for (const part of parts) {
      if (part.startsWith("--")) break;
      const entity = splitEntity(part.replace(/^\r?\n/, ""));
      collectBodies(entity.headers, entity.body, into);
    }
    return;
  }
  const decoded = decodeTransfer(body, headers.get("content-transfer-encoding") ?? "7bit");
  if (contentType.startsWith("text/plain") && into.text === undefined) into.text = decoded;
  if (contentType.startsWith("text/html") && into.html === undefined) into.html = decoded;
}

function decodeTransfer(body: string, encoding: string): string {
  switch (encoding.trim().toLowerCase()) {
    case "base64":
      return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
    case "quoted-printable":
      return decodeQuotedPrintable(body);
    default:
      return body.replace(/\r?\n$/, "");
  }
}

function decodeQuotedPrintable(body: string): string {
  const joined = body.replace(/=\r?\n/g, "").replace(/\r?\n$/, "");
  const bytes: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    const hex = joined[i] === "=" ? joined.slice(i + 1, i + 3) : "";
    if (/^[0-9A-Fa-f]{2}$/.test(hex)) {
      bytes.push(Number.parseInt(hex, 16));
      i += 2;
    } else {
      bytes.push(...Buffer.from(joined[i], "utf8"));
    }
  }
  return Buffer.from(bytes).toString("utf8");
}

/** RFC 2047 encoded words (`=?UTF-8?Q?...?=`), as nodemailer writes non-ASCII subjects. */
function decodeWords(value: string): string {
  return value
    .replace(/(\?=)\s+(=\?)/g, "$1$2")
    .replace(/=\?([^?]+)\?([BbQq])\?([^?]*)\?=/g, (_, _charset: string, kind: string, text: string) => {
      if (kind.toUpperCase() === "B") return Buffer.from(text, "base64").toString("utf8");
      return decodeQuotedPrintable(text.replace(/_/g, " "));
    });
}
