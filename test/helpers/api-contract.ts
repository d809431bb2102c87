// Checks HTTP responses against the server's own /openapi.json: the response's status must be
// documented for its operation (errors fall back to the shared Error schema) and a JSON body must
// match the documented schema. apiClient runs every response of every test through this, so a
// route whose answer differs from its declaration fails the test that called it.

import { z } from "zod";

type JsonSchema = Record<string, unknown>;
type Operation = { responses?: Record<string, { content?: Record<string, { schema?: JsonSchema }> }> };
interface Contract {
  paths: { template: RegExp; methods: Record<string, Operation> }[];
  error: z.ZodType;
  compiled: Map<string, z.ZodType>;
}

const contracts = new Map<string, Promise<Contract>>();

function inlineRefs(schema: unknown, components: Record<string, unknown>): unknown {
  if (Array.isArray(schema)) return schema.map((item) => inlineRefs(item, components));
  if (schema === null || typeof schema !== "object") return schema;
  const ref = (schema as { $ref?: unknown }).$ref;
  if (typeof ref === "string" && ref.startsWith("#/components/schemas/")) return inlineRefs(components[ref.slice("#/components/schemas/".length)], components);
  return Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, inlineRefs(value, components)]));
}

async function load(baseUrl: string): Promise<Contract> {
  const doc = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as {
    paths: Record<string, Record<string, Operation>>;
    components: { schemas: Record<string, unknown> };
  };
  const components = doc.components.schemas;
  const resolved = inlineRefs(doc.paths, components) as Record<string, Record<string, Operation>>;
  const paths = Object.entries(resolved)
    .map(([path, methods]) => ({
      // Literal segments first, so /v1/me/... wins over /v1/{x}/...
      literal: path.split("/").filter((part) => !part.startsWith("{")).length,
      template: new RegExp(`^${path.replace(/[.*+?^$()|[\]\\]/g, "\\$&").replace(/\{[^}]+\}/g, "[^/]+")}$`),
      methods,
    }))
    .sort((a, b) => b.literal - a.literal);
  return { paths, error: z.fromJSONSchema(components.Error as never), compiled: new Map() };
}

/** Throws when a response does not match the documented contract. */
export async function checkResponse(baseUrl: string, method: string, path: string, status: number, contentType: string, text: string): Promise<void> {
  let pending = contracts.get(baseUrl);
  if (!pending) {
    pending = load(baseUrl);
    contracts.set(baseUrl, pending);
  }
  const contract = await pending;
  const pathname = path.split("?")[0];
  const entry = contract.paths.find((p) => p.template.test(pathname) && p.methods[method.toLowerCase()]);
  if (!entry) throw new Error(`contract: ${method} ${pathname} is not in /openapi.json`);
  const operation = entry.methods[method.toLowerCase()];
  const documented = operation.responses?.[String(status)];
  const isJson = contentType.includes("json");
  if (!documented) {
    if (status >= 400 && isJson) {
      const result = contract.error.safeParse(JSON.parse(text));
      if (!result.success) throw new Error(`contract: ${method} ${pathname} ${status} is not the Error schema: ${result.error.message}`);
      return;
    }
    throw new Error(`contract: ${method} ${pathname} answered ${status}, which /openapi.json does not document`);
  }
  const schema = documented.content?.["application/json"]?.schema;
  if (!schema || !isJson || text === "") return;
  const key = `${method} ${entry.template.source} ${status}`;
  let validator = contract.compiled.get(key);
  if (!validator) {
    validator = z.fromJSONSchema(schema as never);
    contract.compiled.set(key, validator);
  }
  const result = validator.safeParse(JSON.parse(text));
  if (!result.success) throw new Error(`contract: ${method} ${pathname} ${status} does not match its documented schema: ${result.error.message}\n${text.slice(0, 500)}`);
}
