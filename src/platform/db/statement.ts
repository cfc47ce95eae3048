// A hot statement declared once, with Drizzle's builder and sql.placeholder() parameters, for both drivers. On
// libSQL it is Drizzle's own prepared statement. On bun:sqlite it is the very SQL text Drizzle's toSQL() gives,
// prepared once on the connection and run without Drizzle's per-call work (filling placeholders and mapping each
// row field by field, with `is()` checks per value), a sizeable share of a small statement's cost: each
// parameter is bound in toSQL()'s order through its column's own encoder, and each row's values are decoded by
// its selected column's own decoder, all decided once. Drizzle's query logger is not called on that path.
import type { Statement as BunStatement } from "bun:sqlite";
import { Column, is, noopDecoder, noopEncoder, Param, Placeholder, SQL, type DriverValueDecoder, type DriverValueEncoder } from "drizzle-orm";
import type { Db } from "./client.ts";
import { sqliteOf, type Step } from "./step.ts";

type Values = Record<string, unknown>;

/**
 * What a repository calls, on either driver. On bun:sqlite it also carries the `query` it was derived from
 * (test/db-drivers.test.ts runs it against Drizzle's own statement).
 */
export interface Statement<Row> {
  get(values?: Values): Step<Row | undefined>;
  all(values?: Values): Step<Row[]>;
  run(values?: Values): Step<unknown>;
}

/** A Drizzle select, or an insert/update/delete (with or without returning()), not yet prepared. */
interface Buildable {
  toSQL(): { sql: string; params: unknown[] };
  prepare(): unknown;
}

/** The row a built query returns (`never` when it returns none). */
export type RowOf<Q> = Q extends { prepare(): { all(...a: never[]): infer R } } ? (Awaited<R> extends (infer E)[] ? E : never) : never;

/**
 * The statement `query` declares, for `db`'s driver. Build it once per handle (inside `preparedFor`): on
 * bun:sqlite that prepares it once per connection. A lookup by a unique key needs no limit(1): Drizzle binds the
 * limit as a parameter, and SQLite runs a statement with a bound LIMIT markedly slower.
 */
export function statement<Q extends Buildable>(db: Db, query: Q): Statement<RowOf<Q>> {
  const c = sqliteOf(db);
  if (!c) return query.prepare() as Statement<RowOf<Q>>;
  const d = derive(query);
  return Object.assign(compile(c.prepare(d.sql), d), { query }) as Statement<RowOf<Q>>;
}

/** How a statement binds its parameters and reads its rows, derived from the Drizzle query. */
export interface Derived {
  sql: string;
  /** Per `?` of `sql`, in order: a placeholder (with its column's encoder, when it changes values), or a constant. */
  params: ({ name: string; encoder: DriverValueEncoder<unknown, unknown> | null } | { value: unknown })[];
  /** Per result column, in order: the row's property and its decoder (null when the driver's value is the property's). */
  columns: { key: string; decoder: DriverValueDecoder<unknown, unknown> | null }[] | null;
}

export function derive(query: Buildable): Derived {
  const { sql, params } = query.toSQL();
  return { sql, params: params.map(paramOf), columns: selected(query) };
}

function paramOf(p: unknown): Derived["params"][number] {
  if (is(p, Placeholder)) return { name: p.name, encoder: null };
  if (is(p, Param) && is(p.value, Placeholder)) return { name: p.value.name, encoder: overrides(p.encoder, "mapToDriverValue") ? p.encoder : null };
  // A value written into the query (a constant in a where clause) arrives already encoded.
  return { value: p };
}

/** Whether a Drizzle encoder or decoder changes values (a plain column's, and the noop ones, return them as they are). */
function overrides(coder: object, method: "mapToDriverValue" | "mapFromDriverValue"): boolean {
  const f = (coder as Record<string, unknown>)[method];
  const plain = is(coder, Column) ? Column.prototype[method] : method === "mapToDriverValue" ? noopEncoder.mapToDriverValue : noopDecoder.mapFromDriverValue;
  return f !== plain;
}

type Field = { path: string[]; field: unknown };

/** The query's result columns in the order its SQL selects them, as Drizzle's own prepare() takes them. */
function selected(query: Buildable): Derived["columns"] {
  const config = (query as unknown as { config: { fields?: Record<string, unknown>; returning?: Field[] } }).config;
  const fields: Field[] | undefined = config.returning ?? (config.fields && Object.entries(config.fields).map(([k, field]) => ({ path: [k], field })));
  if (!fields) return null;
  return fields.map(({ path, field }) => {
    if (path.length !== 1) throw new Error(`statement(): a nested selection (${path.join(".")}) is not supported`);
    // An SQL selection carries the decoder mapWith() gave it (Drizzle keeps it @internal).
    const decoderOf = (q: SQL) => (q as unknown as { decoder: DriverValueDecoder<unknown, unknown> }).decoder;
    const coder = is(field, Column) ? field : is(field, SQL) ? decoderOf(field) : is(field, SQL.Aliased) ? decoderOf(field.sql) : null;
    if (coder === null) throw new Error(`statement(): the selection ${path[0]} is neither a column nor SQL`);
    return { key: path[0]!, decoder: overrides(coder, "mapFromDriverValue") ? coder : null };
  });
}

/**
 * The bun:sqlite statement's get/all/run, generated once from `d` so that a call does what a hand-written one
 * would: the arguments spelled out in order (no array built and spread per call), each row an object literal.
 * A placeholder left undefined is refused, as Drizzle refuses a missing one.
 */
function compile(stmt: BunStatement, d: Derived): Statement<unknown> {
  const lit = JSON.stringify;
  const args = d.params
    .map((p, i) => ("value" in p ? `constant[${i}]` : p.encoder ? `encoder[${i}].mapToDriverValue(v[${lit(p.name)}])` : `v[${lit(p.name)}]`))
    .join(", ");
  const names = [...new Set(d.params.flatMap((p) => ("name" in p ? [p.name] : [])))];
  const check = names.length ? `if (${names.map((n) => `v[${lit(n)}] === undefined`).join(" || ")}) missing(v, ${lit(names)});` : "";
  /** The row object built from `r`, reading column i as `at(i)` (a position in an array, or a name in an object). */
  const rowOf = (at: (i: number) => string) =>
    d.columns
      ?.map(({ key, decoder }, i) => `${lit(key)}: ${decoder ? `${at(i)} === null ? null : decoder[${i}].mapFromDriverValue(${at(i)})` : at(i)}`)
      .join(", ");
  const row = rowOf((i) => `r[${i}]`);
  // bun:sqlite reads a single row only as an object keyed by column name, so get() reads the first row by name.
  // Two result columns of one name would collapse into one key there: such a statement reads its rows as arrays
  // and takes the first, as Drizzle's own get() does (values() steps through every row, so only then).
  const columnNames = stmt.columnNames;
  const distinct = new Set(columnNames).size === columnNames.length;
  const first = distinct
    ? `const r = stmt.get(${args}); return r === null ? undefined : { ${rowOf((i) => `r[${lit(columnNames[i])}]`)} };`
    : `const r = stmt.values(${args})[0]; return r === undefined ? undefined : { ${row} };`;
  const reads = row
    ? `get(v = {}) { ${check} ${first} },
       all(v = {}) {
         ${check}
         const rows = stmt.values(${args});
         const out = new Array(rows.length);
         for (let i = 0; i < rows.length; i++) { const r = rows[i]; out[i] = { ${row} }; }
         return out;
       },`
    : // Nothing selected or returned: as Drizzle's, rows (if any) come back as the driver gives them.
      `get(v = {}) { ${check} return stmt.get(${args}) ?? undefined; },
       all(v = {}) { ${check} return stmt.all(${args}); },`;
  const make = new Function("stmt", "constant", "encoder", "decoder", "missing", `"use strict"; return { ${reads} run(v = {}) { ${check} return stmt.run(${args}); } };`);
  return make(
    stmt,
    d.params.map((p) => ("value" in p ? p.value : undefined)),
    d.params.map((p) => ("encoder" in p ? p.encoder : null)),
    d.columns?.map((c) => c.decoder) ?? [],
    missing,
  );
}

function missing(values: Values, names: string[]): never {
  throw new Error(`No value for placeholder "${names.find((n) => values[n] === undefined)}" was provided`);
}
