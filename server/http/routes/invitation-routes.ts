// The invitation link itself. GET only shows a page with a button (mail scanners fetch links to
// check them, and must not use them); the button POSTs, which redeems the invitation and signs
// the person in. The device token comes back as a cookie and in the body.

import { z } from "zod";
import { ErrorCode } from "../../../protocol/index.ts";
import type { InvitationService } from "../../identity/invitation-service.ts";
import { route } from "../route.ts";
import type { HttpServices } from "../services.ts";

const DEVICE_COOKIE = "parley_device";

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">` +
    `<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

function cookieValue(cookies: string, name: string): string | undefined {
  for (const part of cookies.split(";")) {
    const [key, ...rest] = part.trim().split("=");
    if (key === name) return rest.join("=");
  }
  return undefined;
}

/** The invitation link routes. */
export function invitationRoutes(services: HttpServices, invitations: InvitationService) {
  return [
    route({
      method: "get",
      path: "/invite/:token",
      auth: "public",
      summary: "The page an invitation link opens: a button to accept (nothing is used by this GET).",
      tags: ["invitations"],
      response: { status: 200, description: "An HTML page with a form that POSTs to the same address.", html: true },
      async handler({ params }) {
        try {
          const invitation = await invitations.lookup(params.token);
          const conversation = await services.directory.getConversation(invitation.conversationId);
          return {
            status: 200,
            headers: [["Referrer-Policy", "no-referrer"]],
            html: page(
              "Parley invitation",
              `<h1>You are invited to “${escapeHtml(conversation?.title ?? "a conversation")}”</h1>` +
                `<p>Invitation for ${escapeHtml(invitation.email)}.</p>` +
                `<form method="post"><button type="submit">Open the conversation</button></form>`,
            ),
          };
        } catch {
          return { status: 410, html: page("Invitation unavailable", "<h1>This invitation link is unknown, expired or revoked.</h1>") };
        }
      },
    }),
    route({
      method: "post",
      path: "/invite/:token",
      auth: "public",
      summary:
        "Accept an invitation. First use signs in and returns `deviceToken`; another device gets 401 (code 2012) and an emailed code to send as `code`.",
      tags: ["invitations"],
      sensitive: true,
      body: z.object({ code: z.string().regex(/^\d{6}$/).optional(), deviceToken: z.string().max(100).optional() }),
      response: { status: 200, description: "Signed in, with the conversation to open." },
      errors: [ErrorCode.InvitationInvalid, ErrorCode.DeviceCodeRequired, ErrorCode.InvalidTwoFactorCode, ErrorCode.RateLimited],
      async handler({ params, body, headers }) {
        const deviceToken = body.deviceToken ?? cookieValue(headers.cookie, DEVICE_COOKIE);
        const signIn = await invitations.accept(params.token, { deviceToken, code: body.code });
        const cookie: [string, string][] = signIn.deviceToken
          ? [["Set-Cookie", `${DEVICE_COOKIE}=${signIn.deviceToken}; Path=/invite; Max-Age=1209600; HttpOnly; Secure; SameSite=Strict`]]
          : [];
        return { status: 200, body: signIn, headers: cookie };
      },
    }),
  ];
}
