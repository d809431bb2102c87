// The invitation link itself. GET only shows a page with a button (mail scanners fetch links to
// check them, and must not use them); the button POSTs, which redeems the invitation and signs
// the person in. The device token comes back as a cookie and in the body. A browser's form POST
// is answered for a browser: the session cookies and a redirect into the web app's conversation
// view, or the page asking for the emailed code (second device); API clients get JSON.

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import type { InvitationService, InvitationSignIn } from "./invitation-service.ts";
import { type RouteResult, route } from "../http/route.ts";
import { cookieValue } from "../http/session-cookies.ts";
import type { ConversationDirectory } from "../directory/conversation-directory.ts";
import { escapeHtml, htmlPage, isBrowserForm, linkPageRoute, page } from "../http/link-pages.ts";
import { deliverTokens, type TokenDelivery } from "./auth-routes.ts";
import { RefreshCookie, TokenPair } from "../http/schemas.ts";

const DEVICE_COOKIE = "parley_device";

const UNAVAILABLE_PAGE = page("Invitation unavailable", "<h1>This invitation link is unknown, expired or revoked.</h1>");

/** The page that asks for the code mailed to the invited address (this link was used on another device). */
function codePage(problem?: string): string {
  return page(
    "Parley invitation: enter the code",
    `<h1>Enter the code we emailed you</h1>` +
      `<p>This invitation was already opened on another device. We just emailed a 6-digit code to the invited address (valid 10 minutes).</p>` +
      (problem ? `<p role="alert">${escapeHtml(problem)}</p>` : "") +
      `<form method="post"><label for="code">Code</label> ` +
      `<input id="code" name="code" inputmode="numeric" autocomplete="one-time-code" pattern="[0-9]{6}" maxlength="6" required autofocus> ` +
      `<button type="submit">Open the conversation</button></form>`,
  );
}

/** What the invitation link routes use beside the invitation service: the conversation's name for the page, and where tokens go. */
export type InvitationRouteServices = TokenDelivery & {
  directory: Pick<ConversationDirectory, "getConversation">;
};

/** The invitation link routes. */
export function invitationRoutes(services: InvitationRouteServices, invitations: InvitationService) {
  return [
    linkPageRoute({
      path: "/invite/:token",
      summary: "The page an invitation link opens: a button to accept (nothing is used by this GET).",
      tags: ["invitations"],
      invalid: ErrorCode.InvitationInvalid,
      async render(token) {
        const invitation = await invitations.lookup(token);
        const conversation = await services.directory.getConversation(invitation.conversationId);
        return page(
          "Parley invitation",
          `<h1>You are invited to “${escapeHtml(conversation?.title ?? "a conversation")}”</h1>` +
            `<p>Invitation for ${escapeHtml(invitation.email)}.</p>` +
            `<form method="post"><button type="submit">Open the conversation</button></form>`,
        );
      },
      unavailable: UNAVAILABLE_PAGE,
    }),
    route({
      method: "post",
      path: "/invite/:token",
      auth: "public",
      summary:
        "Accept an invitation. First use signs in and returns `deviceToken`; another device gets 401 (code 2012) and an emailed code to send as `code`.",
      tags: ["invitations"],
      sensitive: true,
      body: z.object({
        code: z.string().regex(/^\d{6}$/).optional(),
        deviceToken: z.string().max(100).optional(),
        refreshCookie: RefreshCookie,
      }),
      response: {
        status: 200,
        description:
          "Signed in, with the conversation to open. A browser form post (form-encoded, accepting HTML) gets 303 to the web app's conversation view with the session cookies instead, or the code page.",
        schema: TokenPair.extend({
          scope: z.enum(["account", "conversation"]).describe("`conversation`: this session reaches the invited conversation only; `account`: a full sign-in"),
          conversationId: z.string(),
          userId: z.string(),
          deviceToken: z.string().optional().describe("on first use: keep it to come back from this device without a code"),
        }),
      },
      errors: [ErrorCode.InvitationInvalid, ErrorCode.DeviceCodeRequired, ErrorCode.InvalidTwoFactorCode, ErrorCode.RateLimited],
      async handler({ params, body, headers, ip }): Promise<RouteResult> {
        const deviceToken = body.deviceToken ?? cookieValue(headers.cookie, DEVICE_COOKIE);
        const from = { ip, userAgent: headers.userAgent };
        const deviceCookie = (signIn: InvitationSignIn): [string, string][] =>
          signIn.deviceToken
            ? [["Set-Cookie", `${DEVICE_COOKIE}=${signIn.deviceToken}; Path=/invite; Max-Age=1209600; HttpOnly; Secure; SameSite=Strict`]]
            : [];
        if (!isBrowserForm(headers)) {
          const signIn = await invitations.accept(params.token, { deviceToken, code: body.code }, from);
          const { conversationId, userId, deviceToken: device, ...pair } = signIn;
          const { tokens, headers: cookies } = deliverTokens(services, pair, body.refreshCookie);
          return { status: 200, body: { ...tokens, conversationId, userId, deviceToken: device }, headers: [...deviceCookie(signIn), ...cookies] };
        }
        try {
          const signIn = await invitations.accept(params.token, { deviceToken, code: body.code }, from);
          const { headers: cookies } = deliverTokens(services, signIn, true);
          return {
            status: 303,
            headers: [...deviceCookie(signIn), ...cookies, ["Location", `/#/conversations/${encodeURIComponent(signIn.conversationId)}`]],
          };
        } catch (error) {
          if (!(error instanceof ParleyError)) throw error;
          switch (error.code) {
            case ErrorCode.DeviceCodeRequired:
              return htmlPage(401, codePage());
            case ErrorCode.InvalidTwoFactorCode:
              return htmlPage(401, codePage("That code is wrong, expired or already used. We can send a new one: open the link again."));
            case ErrorCode.RateLimited:
              return htmlPage(429, codePage("Too many wrong codes: wait a few minutes, then open the link again."));
            case ErrorCode.InvitationInvalid:
              return htmlPage(410, UNAVAILABLE_PAGE);
            default:
              throw error;
          }
        }
      },
    }),
  ];
}
