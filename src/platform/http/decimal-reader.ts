// Reads path parameters or a query string by an object schema of DecimalInt properties (models.ts) without
// TypeBox: the fast reads' id rule is the declared schema itself. Anything the app's validator could answer
// differently (a value that is not canonical or out of range, an unknown or repeated key, percent-encoding in
// a query) makes the reader return undefined, and the request goes the app's way.
import { Kind, OptionalKind, type TSchema } from "@sinclair/typebox";

interface Property {
  name: string;
  minimum: number;
  maximum: number;
  required: boolean;
  default: number | undefined;
}

export type Decoded = Record<string, number | undefined>;

/**
 * The value of the canonical decimal text of a safe integer (DecimalInt's rule: 1 to 16 digits, no sign,
 * leading zero, fraction, exponent or prefix), else undefined. The one spelling of the rule: the schema check in
 * models.ts and the fast path's reader both call it.
 */
export function decimalValue(s: string): number | undefined {
  const n = s.length;
  if (n === 0 || n > 16) return undefined;
  let c = s.charCodeAt(0);
  if (c < 48 || c > 57 || (c === 48 && n > 1)) return undefined;
  for (let i = 1; i < n; i++) {
    c = s.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  const v = Number(s);
  return Number.isSafeInteger(v) ? v : undefined;
}

/** The canonical decimal text of a safe integer in [min, max], else undefined. */
function canonical(s: string, p: Property): number | undefined {
  const v = decimalValue(s);
  return v !== undefined && v >= p.minimum && v <= p.maximum ? v : undefined;
}

/** The schema's properties when every one is a DecimalInt; null otherwise. */
function propertiesOf(schema: TSchema): Property[] | null {
  const props = (schema as { type?: string; properties?: Record<string, TSchema> }).properties;
  if ((schema as { type?: string }).type !== "object" || props === undefined) return null;
  const required = new Set((schema as { required?: string[] }).required ?? []);
  const out: Property[] = [];
  for (const [name, s] of Object.entries(props)) {
    const p = s as TSchema & { minimum?: number; maximum?: number; default?: number };
    if (p[Kind] !== "DecimalInteger" || typeof p.minimum !== "number" || typeof p.maximum !== "number") return null;
    out.push({ name, minimum: p.minimum, maximum: p.maximum, required: required.has(name) && p[OptionalKind] !== "Optional", default: p.default });
  }
  return out;
}

function finish(props: Property[], found: Decoded): Decoded | undefined {
  for (const p of props) {
    if (found[p.name] !== undefined) continue;
    if (p.required) return undefined;
    if (p.default !== undefined) found[p.name] = p.default;
  }
  return found;
}

/** A reader of the router's decoded path parameters, or null when the schema is not an object of DecimalInts. */
export function paramsReader(schema: TSchema): ((raw: Record<string, string>) => Decoded | undefined) | null {
  const props = propertiesOf(schema);
  if (props === null) return null;
  return (raw) => {
    const found: Decoded = {};
    for (const p of props) {
      const s = raw[p.name];
      if (s === undefined) continue;
      const v = canonical(s, p);
      if (v === undefined) return undefined;
      found[p.name] = v;
    }
    return finish(props, found);
  };
}

/** A reader of a raw query string (without "?"), or null when the schema is not an object of DecimalInts. */
export function queryReader(schema: TSchema): ((qs: string) => Decoded | undefined) | null {
  const props = propertiesOf(schema);
  if (props === null) return null;
  const byName = new Map(props.map((p) => [p.name, p]));
  return (qs) => {
    const found: Decoded = {};
    if (qs !== "") {
      if (qs.includes("%") || qs.includes("+")) return undefined;
      for (const part of qs.split("&")) {
        const eq = part.indexOf("=");
        if (eq <= 0) return undefined;
        const p = byName.get(part.slice(0, eq));
        if (p === undefined || found[p.name] !== undefined) return undefined;
        const v = canonical(part.slice(eq + 1), p);
        if (v === undefined) return undefined;
        found[p.name] = v;
      }
    }
    return finish(props, found);
  };
}
