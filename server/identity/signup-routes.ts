// Sign-up in two steps, so the API tells nobody which addresses have an account: the request is
// answered 202 for every address (new ones get a confirmation link, known ones a notice); the
// link's GET shows a page with a button and uses nothing (mail scanners fetch links); its POST
// creates the organisation and its owner and signs them in. A browser's form POST gets the
// session cookies and a redirect into the web app; API clients get JSON.

import { z } from "zod";
import { ErrorCode } from "../../protocol/index.ts";
import { ParleyError } from "../platform/errors.ts";
import { type NewOwner, SIGNUP_LINK_TTL_MS, SignUpMailThrottled, type SignUpService } from "./signup-service.ts";
import { type RouteContext, type RouteResult, route } from "../http/route.ts";
import { HttpError } from "../http/router.ts";
import type { HttpServices } from "./http-services.ts";
import { assertAcceptable, deliverTokens, type TokenDelivery } from "./auth-routes.ts";
import { escapeHtml, htmlPage, isBrowserForm, linkPageRoute, page } from "../http/link-pages.ts";
import { Email, Name, OrganisationView, Password, RefreshCookie, TokenPair, UserView } from "../http/schemas.ts";

const SPENT_PAGE = page("Sign-up link unavailable", "<h1>This sign-up link is unknown, expired or already used.</h1><p>Sign up again, or sign in if you already did.</p>");

/** What the sign-up routes use beside the sign-up service: no directory (the service has its part). */
export type SignupRouteServices = TokenDelivery & Pick<HttpServices, "passwordPolicy" | "notices">;

/** The sign-up routes: the request, and the mailed link's page and confirmation. */
export function signupRoutes(services: SignupRouteServices, signups: SignUpService) {
  /** Signs the new owner in on the device that confirmed (which is then no "new device" at sign-in). */
  const signIn = async (owner: NewOwner, context: RouteContext<unknown, unknown>, refreshCookie: boolean | undefined) => {
    const from = { ip: context.ip, userAgent: context.headers.userAgent };
    // Remembered first, so the sign-in's own entry raises no "new device" notice.
    await services.notices?.rememberDevice(owner.organisation.id, owner.user.id, from);
    return deliverTokens(services, await signups.startSession(owner, from), refreshCookie);
  };
  return [
    route({
      method: "post",
      path: "/v1/signup",
      auth: "public",
      summary:
        "Ask to create an organisation and its first member (the owner). The answer is the same whether or not the address has an account: a new address gets a link (valid 24 hours, works once) that creates the account when POSTed; an address with an account gets a notice, and nothing changes.",
      tags: ["auth"],
      sensitive: true,
      body: z.object({ email: Email, password: Password, name: Name, organisation: Name }),
      response: {
        status: 202,
        description: "Mailed: confirm with the link (`POST /signup/{token}`). `passwordScore` is the zxcvbn strength (0-4) of the password given.",
        schema: z.object({ status: z.literal("confirmation-mailed"), expiresIn: z.number().describe("seconds the link stays valid"), passwordScore: z.number() }),
      },
      errors: [ErrorCode.WeakPassword, ErrorCode.RateLimited],
      async handler({ body }) {
        const passwordScore = assertAcceptable(services, body.password, [body.email, body.name, body.organisation]);
        try {
          await signups.request(body);
        } catch (error) {
          if (error instanceof SignUpMailThrottled) throw new HttpError(error.code, error.message, {}, Math.ceil(error.retryAfterMs / 1000));
          throw error;
        }
        return { status: 202, body: { status: "confirmation-mailed", expiresIn: SIGNUP_LINK_TTL_MS / 1000, passwordScore } };
      },
    }),
    linkPageRoute({
      path: "/signup/:token",
      summary: "The page a sign-up link opens: a button to confirm (nothing is used by this GET).",
      tags: ["auth"],
      invalid: ErrorCode.SignupLinkInvalid,
      async render(token) {
        const pending = await signups.lookup(token);
        return page(
          "Confirm your Parley sign-up",
          `<h1>Create “${escapeHtml(pending.organisation)}”</h1>` +
            `<p>Sign-up for ${escapeHtml(pending.email)}, as ${escapeHtml(pending.name)}.</p>` +
            `<form method="post"><button type="submit">Confirm and sign in</button></form>`,
        );
      },
      unavailable: SPENT_PAGE,
    }),
    route({
      method: "post",
      path: "/signup/:token",
      auth: "public",
      summary: "Confirm a sign-up (the link works once): creates the organisation and its owner, and signs in.",
      tags: ["auth"],
      sensitive: true,
      body: z.object({ refreshCookie: RefreshCookie }),
      response: {
        status: 201,
        description: "Signed in. A browser form post (form-encoded, accepting HTML) gets 303 to the web app with the session cookies instead.",
        schema: TokenPair.extend({ user: UserView, organisation: OrganisationView }),
      },
      errors: [ErrorCode.SignupLinkInvalid, ErrorCode.Conflict],
      async handler(context): Promise<RouteResult> {
        const { params, body, headers } = context;
        if (!isBrowserForm(headers)) {
          const owner = await signups.confirm(params.token);
          const { tokens, headers: cookies } = await signIn(owner, context, body.refreshCookie);
          return { status: 201, body: { ...tokens, ...owner }, headers: cookies };
        }
        try {
          const owner = await signups.confirm(params.token);
          const { headers: cookies } = await signIn(owner, context, true);
          return { status: 303, headers: [...cookies, ["Location", "/#/"]] };
        } catch (error) {
          if (!(error instanceof ParleyError)) throw error;
          if (error.code === ErrorCode.SignupLinkInvalid) return htmlPage(410, SPENT_PAGE);
          if (error.code === ErrorCode.Conflict) return htmlPage(409, page("Already signed up", `<h1>${escapeHtml(error.message)}</h1>`));
          throw error;
        }
      },
    }),
  ];
}
