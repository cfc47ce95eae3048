// The OpenAPI 3.1 document, built from the routes of the finished app: the same TypeBox schemas that validate
// each request (params, query, body) and describe each response. What the platform adds to every route (the
// request id, the body parser's 400/408/413/415/422, problem+json for errors) is added here, once; what depends on
// the deployment (replica writes, rate limits) comes from the composition root through `extra`.
import { Kind, OptionalKind } from "@sinclair/typebox";
import { headerComponentName, ProblemSchema } from "./models.ts";
import { SchemaConverter } from "./openapi-schema.ts";

type Json = Record<string, unknown>;

export interface RouteInfo {
  method: string;
  /** OpenAPI path, `{id}` style. */
  path: string;
  hasBody: boolean;
}

export interface ResponseSpec {
  description: string;
  /** Names from HEADERS below (or added through OpenApiOptions.headers). */
  headers?: string[];
}

export interface HeaderSpec {
  description: string;
  schema: Json;
  /** Sent on every response it is listed for. */
  required?: boolean;
}

export interface OpenApiOptions {
  info: Json;
  servers: Json[];
  tags: { name: string; description: string }[];
  securitySchemes: Json;
  /** Responses the deployment adds to a route (replica guard, rate limits, 503s); a route's own win. */
  extra?: (route: RouteInfo) => Record<number, ResponseSpec>;
  /** Headers a route's responses carry besides the request id: header name -> statuses ("2xx"/"4xx": every such one). */
  responseHeaders?: (route: RouteInfo) => Record<string, (number | "2xx" | "4xx")[]>;
  /** Parameters the deployment adds to a route (request headers such as Idempotency-Key). */
  parameters?: (route: RouteInfo) => Json[];
  headers?: Record<string, HeaderSpec>;
}

const HEADERS: Record<string, HeaderSpec> = {
  "x-request-id": {
    description: "The request's id: the client's own x-request-id when it sent a sane one, else a new UUID. Logged with the request.",
    schema: { type: "string", pattern: "^[A-Za-z0-9._:\\-]{1,128}$" },
    required: true,
  },
  "www-authenticate": { description: "The scheme to authenticate with", schema: { type: "string", examples: ['Bearer realm="api"'] } },
  "retry-after": { description: "Seconds to wait before retrying", schema: { type: "integer", minimum: 0 } },
  connection: {
    description: "close: the server closes the connection after this answer (the rest of the body may still be on its way)",
    schema: { type: "string", enum: ["close"] },
    required: true,
  },
};

const ERROR_DESCRIPTIONS: Record<number, string> = {
  400: "The body is not valid JSON",
  401: "No bearer token, or it is malformed, expired or revoked",
  403: "The token is valid but its user may not do this",
  404: "Nothing has this id",
  409: "Conflicts with the current state",
  408: "The body did not arrive in time; the connection is closed after this answer",
  413: "The body is larger than the instance's limit (BODY_LIMIT_BYTES)",
  415: "The body is not sent as application/json",
  422: "The request did not validate: `errors` names each field with its message",
  429: "Too many requests from this caller; retry after Retry-After seconds",
  503: "A dependency (database, Redis, the primary) is unavailable; retry later",
};

const SUCCESS_DESCRIPTIONS: Record<number, string> = { 200: "OK", 201: "Created", 202: "Accepted", 204: "Done; no content" };

interface ElysiaRoute {
  method: string;
  path: string;
  hooks?: {
    detail?: Json & { hide?: boolean; responses?: Record<string, { description?: string; headers?: Json }> };
    params?: unknown;
    query?: unknown;
    headers?: unknown;
    body?: unknown;
    response?: unknown;
  };
}

/** The finished Elysia app (its `routes` include every plugin's). Routes name their schemas by object, not by `.model()` string. */
export interface DocumentSource {
  readonly routes: readonly unknown[];
}

const METHODS = new Set(["get", "put", "post", "patch", "delete"]);

export function openApiDocument(app: DocumentSource, opts: OpenApiOptions): Json {
  const converter = new SchemaConverter();
  const headerSpecs = { ...HEADERS, ...opts.headers };
  const usedHeaders = new Set<string>();
  const headerRef = (name: string) => {
    if (!headerSpecs[name]) throw new Error(`OpenAPI: unknown header ${name}`);
    usedHeaders.add(name);
    return { $ref: `#/components/headers/${headerComponentName(name)}` };
  };
  const paths: Record<string, Json> = {};

  for (const raw of app.routes as readonly ElysiaRoute[]) {
    const method = raw.method.toLowerCase();
    const hooks = raw.hooks ?? {};
    const detail = hooks.detail ?? {};
    if (detail.hide || !METHODS.has(method) || raw.path.includes("*")) continue;
    const path = raw.path.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
    const route: RouteInfo = { method: method.toUpperCase(), path, hasBody: hooks.body !== undefined };
    const { hide: _h, responses: described, ...rest } = detail;

    const parameters = [
      ...parametersOf(converter, hooks.params, "path"),
      ...parametersOf(converter, hooks.query, "query"),
      ...parametersOf(converter, hooks.headers, "header"),
    ];
    for (const m of path.matchAll(/\{([^}]+)\}/g)) {
      if (!parameters.some((p) => p.name === m[1] && p.in === "path")) parameters.unshift({ name: m[1], in: "path", required: true, schema: { type: "string" } });
    }

    parameters.push(...(opts.parameters?.(route) ?? []));
    const operation: Json = { ...rest, security: detail.security ?? [] };
    if (parameters.length > 0) operation.parameters = parameters;
    if (hooks.body !== undefined) {
      const body = hooks.body as Json;
      const example = examplesOf(body)?.[0];
      operation.requestBody = {
        required: !(OptionalKind in body),
        content: { "application/json": { schema: converter.convert(body), ...(example !== undefined ? { example } : {}) } },
      };
    }

    // Statuses: the route's own, then what the platform adds for what the route takes, then the deployment's.
    const own = responseSchemas(hooks.response);
    const platform: Record<number, ResponseSpec> = {};
    if (route.hasBody) for (const s of [400, 413, 415, 422]) platform[s] = { description: ERROR_DESCRIPTIONS[s]! };
    if (route.hasBody) platform[408] = { description: ERROR_DESCRIPTIONS[408]!, headers: ["connection"] };
    if (hooks.params !== undefined || hooks.query !== undefined) platform[422] = { description: ERROR_DESCRIPTIONS[422]! };
    const extra = opts.extra?.(route) ?? {};
    const statuses = [...new Set([...Object.keys(own), ...Object.keys(platform), ...Object.keys(extra)].map(Number))].sort((a, b) => a - b);
    const headerMap = opts.responseHeaders?.(route) ?? {};

    const responses: Json = {};
    for (const status of statuses) {
      const schema = own[status];
      const spec = described?.[status] ?? {};
      const fallback = extra[status] ?? platform[status];
      const headers: Json = { "x-request-id": headerRef("x-request-id") };
      const names = [
        ...(status === 401 ? ["www-authenticate"] : []),
        ...(fallback?.headers ?? []),
        ...Object.keys(spec.headers ?? {}),
        ...Object.entries(headerMap)
          .filter(([, on]) => on.includes(status) || (status < 300 && on.includes("2xx")) || (status >= 400 && status < 500 && on.includes("4xx")))
          .map(([name]) => name),
      ];
      for (const name of names) headers[name] = headerRef(name);
      const response: Json = {
        // A route's own meaning first, then what the deployment adds for the same status.
        description:
          spec.description && extra[status] ? `${spec.description}; or: ${extra[status]!.description}` : (spec.description ?? fallback?.description ?? describe(status, schema)),
        headers,
      };
      const isError = status >= 400;
      if (isError && (schema === undefined || isProblem(schema))) {
        response.content = { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } };
      } else if (schema !== undefined && !isEmpty(schema)) {
        response.content = { "application/json": { schema: converter.convert(schema) } };
      }
      responses[String(status)] = response;
    }
    operation.responses = responses;
    (paths[path] ??= {})[method] = operation;
  }

  return {
    openapi: "3.1.0",
    info: opts.info,
    servers: opts.servers,
    tags: opts.tags,
    paths,
    components: {
      schemas: { ...Object.fromEntries(converter.components), Problem: converter.convert(ProblemSchema) },
      headers: Object.fromEntries(
        [...usedHeaders].map((name) => {
          const { description, schema, required } = headerSpecs[name]!;
          return [headerComponentName(name), { description, schema, ...(required ? { required: true } : {}) }];
        }),
      ),
      securitySchemes: opts.securitySchemes,
    },
  };
}

const isProblem = (schema: unknown) => schema === ProblemSchema;

function isEmpty(schema: unknown): boolean {
  const kind = schema && typeof schema === "object" ? (schema as Record<symbol, unknown>)[Kind] : undefined;
  return kind === "Void" || kind === "Undefined";
}

function describe(status: number, schema: unknown): string {
  if (status >= 400) return ERROR_DESCRIPTIONS[status] ?? "Error";
  const own = schema && typeof schema === "object" ? (schema as Json).description : undefined;
  return typeof own === "string" ? own : (SUCCESS_DESCRIPTIONS[status] ?? "Success");
}

function responseSchemas(response: unknown): Record<number, unknown> {
  if (response === undefined) return {};
  if (typeof response === "string" || Kind in (response as object)) return { 200: response };
  const out: Record<number, unknown> = {};
  for (const [status, schema] of Object.entries(response as Json)) if (!Number.isNaN(Number(status))) out[Number(status)] = schema;
  return out;
}

function examplesOf(schema: unknown): unknown[] | undefined {
  const ex = schema && typeof schema === "object" ? (schema as Json).examples : undefined;
  return Array.isArray(ex) ? ex : undefined;
}

function parametersOf(converter: SchemaConverter, schema: unknown, where: "path" | "query" | "header"): Json[] {
  if (!schema || typeof schema !== "object") return [];
  const object = schema as Json;
  const properties = (object.properties ?? {}) as Json;
  const required = new Set((object.required as string[] | undefined) ?? []);
  return Object.entries(properties).map(([name, prop]) => {
    const { description, ...rest } = converter.convert(prop);
    const example = examplesOf(prop)?.[0];
    return {
      name,
      in: where,
      required: where === "path" || required.has(name),
      ...(typeof description === "string" ? { description } : {}),
      schema: rest,
      ...(example !== undefined ? { example } : {}),
    };
  });
}
