// A tiny JSON client for the HTTP API in tests: bearer token, optional extra headers, and the
// parsed body next to the status, so a test reads like the curl walk-through in the README.
// Every response is checked against the server's /openapi.json (helpers/api-contract.ts).

import { checkResponse } from "./api-contract.ts";

/** A response as tests look at it. */
export interface ApiResponse {
  status: number;
  body: Record<string, unknown> & { error?: { code: number; message: string; [detail: string]: unknown } };
  headers: Headers;
}

/** Calls the API at `baseUrl`. */
export function apiClient(baseUrl: string) {
  return async function call(
    method: string,
    path: string,
    options: {
      token?: string;
      body?: unknown;
      headers?: Record<string, string>;
      /** Skip the contract check (a test of how the server answers what the contract excludes). */
      unchecked?: boolean;
    } = {},
  ): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${baseUrl}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await response.text();
    const contentType = response.headers.get("content-type") ?? "";
    if (!options.unchecked) await checkResponse(baseUrl, method, path, response.status, contentType, text);
    let body: ApiResponse["body"] = {};
    if (text && (response.headers.get("content-type") ?? "").includes("json")) body = JSON.parse(text);
    else if (text) body = { html: text };
    return { status: response.status, body, headers: response.headers };
  };
}
