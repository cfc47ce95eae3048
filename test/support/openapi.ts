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
