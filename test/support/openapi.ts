// Helpers for the OpenAPI checks: Ajv 2020 (strict) over the document's schemas, and its operations as a list.
import Ajv2020 from "ajv/dist/2020";
import addFormats from "ajv-formats";

// The document is JSON of many shapes; the tests read it field by field.
export type Doc = Record<string, any>;

export interface Operation {
  method: string;
  path: string;
  op: Doc;
}

export function operations(doc: Doc): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries<Doc>(doc.paths)) {
    for (const [method, op] of Object.entries<Doc>(item)) out.push({ method, path, op });
  }
  return out;
}

const DOC_ID = "https://neodyme-edge.dev/openapi.json";

/** `#/components/schemas/X` -> a `$defs` entry of one registered schema, so Ajv resolves the document's refs. */
function relocate<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', `"${DOC_ID}#/$defs/`));
}

/** Ajv 2020 in strict mode (unknown keywords, formats and loose types are errors), knowing the document's components. */
export function documentAjv(doc: Doc) {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  ajv.addSchema({ $id: DOC_ID, $defs: relocate(doc.components.schemas) });
  return {
    validate(schema: unknown, value: unknown): boolean {
      return ajv.validate(relocate(schema as object), value) as boolean;
    },
    get errors() {
      return ajv.errors;
    },
    compile(schema: unknown) {
      return ajv.compile(relocate(schema as object));
    },
  };
}

/** Compiles every schema of the document: components, parameters, request bodies, responses, headers. */
export function compileAll(doc: Doc): { compiled: number; failures: string[] } {
  const ajv = documentAjv(doc);
  let compiled = 0;
  const failures: string[] = [];
  const compile = (schema: unknown, where: string) => {
    try {
      ajv.compile(schema);
      compiled++;
    } catch (err) {
      failures.push(`${where}: ${(err as Error).message}`);
    }
  };
  for (const [name, s] of Object.entries(doc.components.schemas)) compile(s, `components.schemas.${name}`);
  for (const [name, h] of Object.entries<Doc>(doc.components.headers ?? {})) compile(h.schema, `components.headers.${name}`);
  for (const { method, path, op } of operations(doc)) {
    for (const p of op.parameters ?? []) compile(p.schema, `${method} ${path} parameter ${p.name}`);
    for (const m of Object.values<Doc>(op.requestBody?.content ?? {})) compile(m.schema, `${method} ${path} body`);
    for (const [status, r] of Object.entries<Doc>(op.responses)) {
      for (const m of Object.values<Doc>(r.content ?? {})) compile(m.schema, `${method} ${path} ${status}`);
    }
  }
  return { compiled, failures };
}

/** The operation a request path hits: static segments win over `{param}` ones, as the router does. */
export function findOperation(doc: Doc, method: string, pathname: string): { path: string; op: Doc } | undefined {
  const candidates = Object.keys(doc.paths).filter((p) => {
    const re = new RegExp("^" + p.replace(/\{[^}]+\}/g, "[^/]+") + "$");
    return re.test(pathname) && doc.paths[p][method.toLowerCase()];
  });
  candidates.sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0));
  const path = candidates[0];
  return path ? { path, op: doc.paths[path][method.toLowerCase()] } : undefined;
}

const SENT_HEADERS = [
  "x-request-id",
  "retry-after",
  "ratelimit",
  "ratelimit-policy",
  "www-authenticate",
  "fly-replay",
  "x-cache",
  "idempotent-replayed",
];

/**
 * Checks one real response against the document with Ajv: its status is documented for the operation, its
 * media type is the documented one (none for a body-less response), its body validates, and the headers the
 * document marks required are there. Returns the violations (empty when it conforms).
 */
export function responseViolations(
  doc: Doc,
  ajv: ReturnType<typeof documentAjv>,
  method: string,
  pathname: string,
  res: { status: number; headers: Headers; body: string },
): string[] {
  const found = findOperation(doc, method, pathname);
  if (!found) return [`${method} ${pathname}: no operation in the document`];
  const documented = found.op.responses[String(res.status)];
  if (!documented) return [`${method} ${found.path}: status ${res.status} is not documented`];
  const out: string[] = [];
  const type = (res.headers.get("content-type") ?? "").split(";")[0]!.trim();
  const content = documented.content as Doc | undefined;
  if (!content) {
    if (res.body !== "") out.push(`${res.status}: a body where none is documented`);
  } else if (!content[type]) {
    out.push(`${res.status}: content-type ${type || "(none)"} is not one of ${Object.keys(content).join(", ")}`);
  } else if (!ajv.validate(content[type].schema, JSON.parse(res.body))) {
    out.push(`${res.status}: body does not validate: ${JSON.stringify(ajv.errors)}`);
  }
  // Headers of the contract that the server sent must be documented for this status.
  for (const name of SENT_HEADERS) {
    if (res.headers.get(name) !== null && !documented.headers?.[name]) out.push(`${res.status}: sends ${name}, which is not documented`);
  }
  for (const [name, ref] of Object.entries<Doc>(documented.headers ?? {})) {
    const header = ref.$ref ? doc.components.headers[ref.$ref.split("/").pop()] : ref;
    const value = res.headers.get(name);
    if (value === null) {
      if (header.required) out.push(`${res.status}: required header ${name} missing`);
    } else if (!ajv.validate(header.schema, header.schema.type === "integer" ? Number(value) : value)) {
      out.push(`${res.status}: header ${name}: ${value} does not validate`);
    }
  }
  return out;
}
