// Self-description: the public keys that verify access tokens (JWKS, for host applications and
// other services) and the OpenAPI document generated from the route declarations.

import type { ServerKeys } from "../../auth/keys.ts";
import { buildOpenApi } from "../openapi.ts";
import { type RouteDefinition, route } from "../route.ts";

/** The JWKS and OpenAPI routes; `all` is every route of the API, for the document. */
export function metaRoutes(keys: ServerKeys, all: () => readonly RouteDefinition[]) {
  return [
    route({
      method: "get",
      path: "/.well-known/jwks.json",
      auth: "public",
      summary: "Public keys that verify Parley access tokens (EdDSA).",
      tags: ["meta"],
      response: { status: 200, description: "A JWK Set." },
      async handler() {
        const jwk = keys.verifyKey.export({ format: "jwk" });
        return { status: 200, body: { keys: [{ ...jwk, kid: keys.signingKid, alg: "EdDSA", use: "sig" }] } };
      },
    }),
    route({
      method: "get",
      path: "/openapi.json",
      auth: "public",
      summary: "This document.",
      tags: ["meta"],
      response: { status: 200, description: "OpenAPI 3.1." },
      async handler() {
        return { status: 200, body: buildOpenApi(all()) };
      },
    }),
  ];
}
