// The request body parser every route uses: size limit while reading, JSON only, nesting depth checked before
// JSON.parse. A separate function so whichever way it is registered (global hook or named parser) it is the same.
import { isUtf8 } from "node:buffer";
import { AppError, badRequest, payloadTooLarge, unprocessable } from "./errors.ts";
import { JSON_MAX_DEPTH, JSON_MAX_VALUES, jsonShapeProblem } from "./json-depth.ts";

/**
 * A body whose connection closed before its end is the client's broken request, not a server failure: a 400, as
 * a chunked body cut off (which simply ends early) gets from the JSON check, and no error in the logs.
 */
function cutOff(request: Request, err: unknown): unknown {
  if (!request.signal.aborted && (err as { name?: unknown } | null)?.name !== "AbortError") return err;
  return badRequest("The request body ended before it was complete (the connection closed)");
}

/**
 * A body's grace: how long it may take to start, and the longest a chunked body may go without a byte. Below Bun's
 * idle timeout (IDLE_TIMEOUT_S, bodyIdleSeconds), so a stalled body is answered 408 with its request id instead of
 * the connection closing unanswered.
 */
export const BODY_ARRIVAL_MS = 8_000;

/**
 * The slowest upload a body is waited for, past its grace: a body's deadline grows with its size, so a slow
 * client's large body is not refused for its size, while the wait stays bounded (by BODY_LIMIT_BYTES at this rate).
 */
export const BODY_MIN_BYTES_PER_S = 4096;

/** The most any body is waited for: Bun's idle timeout, which must outlast it (bodyIdleSeconds), is at most 255 s. */
export const BODY_ARRIVAL_MAX_MS = 240_000;

/**
 * How long a body of `length` bytes may take to arrive in full: BODY_ARRIVAL_MS plus its length at
 * BODY_MIN_BYTES_PER_S, at most BODY_ARRIVAL_MAX_MS. A chunked body, whose length is not known, is given what a
 * body of `limit` bytes is.
 */
export function bodyArrivalMs(length: number, limit: number): number {
  return Math.min(BODY_ARRIVAL_MAX_MS, BODY_ARRIVAL_MS + (Math.min(length, limit) / BODY_MIN_BYTES_PER_S) * 1000);
}

/** Bun's idleTimeout for every connection (serve.ts): long enough for the app's 408 of a small body to come first. */
export const IDLE_TIMEOUT_S = BODY_ARRIVAL_MS / 1000 + 2;

/**
 * The idle timeout (seconds) `request`'s connection needs so that its body's deadline comes before Bun closes it,
 * when that is more than IDLE_TIMEOUT_S (undefined otherwise): serve.ts sets it for the request (server.timeout).
 * Bun does not count a body arriving slowly as activity (uWS resets the timer only past its own minimum
 * throughput), so without it a steady slow upload is cut off at IDLE_TIMEOUT_S, unanswered.
 */
export function bodyIdleSeconds(request: Request, limit: number): number | undefined {
  const declared = declaredLength(request);
  if (declared === undefined ? request.headers.get("transfer-encoding") === null : declared === 0 || declared > limit) return undefined;
  const ms = bodyArrivalMs(declared ?? limit, limit);
  return ms <= (IDLE_TIMEOUT_S - 1) * 1000 ? undefined : Math.ceil(ms / 1000) + 2;
}

/** The length a request declares, else undefined (chunked). */
function declaredLength(request: Request): number | undefined {
  const declared = request.headers.get("content-length");
  return declared === null ? undefined : Number(declared);
}

/** The rule's words for a body of `length` bytes. */
const rule = (length: number, limit: number) =>
  `${Math.ceil(bodyArrivalMs(length, limit) / 1000)} s (${BODY_ARRIVAL_MS / 1000} s plus 1 s per ${BODY_MIN_BYTES_PER_S} bytes)`;

/** The 408 of a body that did not arrive in time; the connection is closed after it (the rest may still come). */
const bodyLate = (why: string) => new AppError(408, `The request body did not arrive in time: ${why}`, undefined, { connection: "close" });

/** `read`, or `late` once `deadline` (a performance.now() time) has passed; a read left behind fails unobserved. */
function within<T>(read: Promise<T>, deadline: number, late: () => AppError): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(late()), Math.max(0, deadline - performance.now()));
    read.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (err) => {
        clearTimeout(timer);
        reject(err);
      },
    );
  });
}

/** The deadlines of bodies read twice (a clone first, then the request: idempotency.ts), set by bodyDeadline. */
const deadlines = new WeakMap<Request, number>();

/** The time `request`'s body must have arrived by, the same for every read of it that passes it to readLimited. */
export function bodyDeadline(request: Request, limit: number): number {
  let deadline = deadlines.get(request);
  if (deadline === undefined) deadlines.set(request, (deadline = performance.now() + bodyArrivalMs(declaredLength(request) ?? limit, limit)));
  return deadline;
}

/**
 * Reads a body, never holding more than `limit` bytes of it: past that, 413 (chunked bodies included); not all
 * there by `deadline` (bodyArrivalMs from the first read, bodyDeadline), or a chunked body silent for
 * BODY_ARRIVAL_MS, 408.
 */
export async function readLimited(
  request: Request,
  limit: number,
  deadline = deadlines.get(request) ?? performance.now() + bodyArrivalMs(declaredLength(request) ?? limit, limit),
): Promise<Uint8Array> {
  // A declared length is what the server reads, no more (HTTP framing): read it natively in one piece, which
  // costs a fraction of pulling the stream chunk by chunk. Without one (chunked), count while reading. The
  // declared case never touches `request.body`: on a served request that getter makes a ReadableStream, which
  // the native read then goes through.
  const declared = declaredLength(request);
  if (declared !== undefined) {
    if (declared > limit) throw payloadTooLarge(limit);
    const late = () => bodyLate(`a body of ${declared} bytes is given ${rule(declared, limit)}`);
    let bytes: Uint8Array;
    try {
      bytes = await within(request.bytes(), deadline, late);
    } catch (err) {
      throw cutOff(request, err);
    }
    if (bytes.byteLength > limit) throw payloadTooLarge(limit);
    return bytes;
  }
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    let read: Awaited<ReturnType<typeof reader.read>>;
    // Each piece within the grace of the one before (a stall is answered before Bun's idleTimeout closes the
    // connection), and all of it by the deadline.
    const silentUntil = performance.now() + BODY_ARRIVAL_MS;
    const late = () =>
      bodyLate(
        silentUntil <= deadline
          ? `nothing came for ${BODY_ARRIVAL_MS / 1000} s`
          : `a chunked body is given what one of the limit, ${limit} bytes, is: ${rule(limit, limit)}`,
      );
    try {
      read = await within(reader.read(), Math.min(deadline, silentUntil), late);
    } catch (err) {
      void reader.cancel().catch(() => {});
      throw cutOff(request, err);
    }
    const { done, value } = read;
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      void reader.cancel().catch(() => {});
      throw payloadTooLarge(limit);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0]!;
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** True when the JSON text may hold a `\uD800`-`\uDFFF` escape: only then can a parsed string be ill-formed. */
export function mayEscapeSurrogate(text: string): boolean {
  return /\\u[dD][89a-fA-F]/.test(text);
}

/** True when every string (and key) in the parsed value is well-formed UTF-16: no lone surrogate. */
export function wellFormed(value: unknown): boolean {
  if (typeof value === "string") return value.isWellFormed();
  if (typeof value !== "object" || value === null) return true;
  if (Array.isArray(value)) return value.every(wellFormed);
  for (const [k, v] of Object.entries(value)) if (!k.isWellFormed() || !wellFormed(v)) return false;
  return true;
}

/**
 * True when the JSON text may hold a number JSON.parse does not keep as written: an integer of 16 digits or more
 * (past 2^53 - 1 it rounds), a three-digit exponent (it may overflow to Infinity or underflow to 0). A fraction
 * that underflows without an exponent starts with hundreds of zeros, so the 16-digit rule flags it too. Digits
 * inside strings match as well: they only cost the exact check of inexactNumbers.
 */
export function mayHoldInexactNumber(text: string): boolean {
  return /\d{16}|[eE][+-]?\d{3}/.test(text);
}

/**
 * Whether a number literal (`source`, as written in the body) parsed to `value` is not what was written, beyond
 * the rounding of a fraction to binary: an integer outside I-JSON's exact range (RFC 7493: within 2^53 - 1), a
 * literal with a nonzero digit that underflowed to 0, one that overflowed to Infinity.
 */
function inexactNumber(source: string, value: number): boolean {
  if (!Number.isFinite(value)) return true;
  if (value === 0) return /^[^eE]*[1-9]/.test(source);
  return !/[.eE]/.test(source) && !Number.isSafeInteger(value);
}

export const INEXACT_NUMBER_MESSAGE =
  "is a number the server cannot keep exactly: send an integer within ±(2^53 - 1) written without fraction or exponent, or a finite number not so close to 0 that it becomes 0";

/**
 * The fields (dot-separated paths, "body" for the whole) of valid JSON `text` whose numbers inexactNumber
 * refuses. JSON.parse loses the literal, so this parses again with a reviver that is given each one's source
 * text; only for a body mayHoldInexactNumber flags.
 */
export function inexactNumbers(text: string): string[] {
  const found: { holder: unknown; key: string }[] = [];
  const reviver = function (this: unknown, key: string, value: unknown, context?: { source?: string }) {
    if (typeof value === "number" && context?.source !== undefined && inexactNumber(context.source, value)) found.push({ holder: this, key });
    return value;
  };
  const root: unknown = JSON.parse(text, reviver as (key: string, value: unknown) => unknown);
  if (found.length === 0) return [];
  // The reviver runs leaves first, before their path is known: find each holder's path in the parsed value.
  const paths = new Map<unknown, string>();
  const walk = (node: unknown, path: string) => {
    if (typeof node !== "object" || node === null) return;
    paths.set(node, path);
    for (const [k, v] of Object.entries(node)) walk(v, path === "" ? k : `${path}.${k}`);
  };
  walk(root, "");
  return found.map(({ holder, key }) => {
    const at = paths.get(holder);
    return at === undefined ? "body" : at === "" ? key : `${at}.${key}`;
  });
}

/**
 * The UTF-8 text of a body, or a 400 for bytes that are not UTF-8 (never stored as U+FFFD). A leading byte order
 * mark is dropped, as TextDecoder drops it. A native check and a plain decode: a fatal TextDecoder costs several
 * times as much on a large body.
 */
export function utf8(bytes: Uint8Array): string {
  if (!isUtf8(bytes)) throw badRequest("The request body is not valid UTF-8");
  const bom = bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? 3 : 0;
  return Buffer.from(bytes.buffer, bytes.byteOffset + bom, bytes.byteLength - bom).toString("utf8");
}

/** Whether a request declares a body: a Content-Length above 0, or a Transfer-Encoding (chunked). */
export function declaresBody(headers: Headers): boolean {
  const length = headers.get("content-length");
  return length === null ? headers.get("transfer-encoding") !== null : Number(length) > 0;
}

/**
 * True when a body is sent as it is: no Content-Encoding, or only `identity`. The one rule for both ways a write is
 * answered (the parser below refuses the others, the fast path declines them to it): no route decodes a compressed
 * body, and taking its bytes as the JSON would refuse it for the wrong reason (400, not UTF-8) or, worse, accept a
 * body whose declared encoding was ignored.
 */
export function identityEncoded(headers: Headers): boolean {
  const encoding = headers.get("content-encoding");
  return encoding === null || encoding.split(",").every((c) => c.trim() === "" || c.trim().toLowerCase() === "identity");
}

/**
 * Parses a JSON request body: 415 for a Content-Encoding other than identity (RFC 7694's `Accept-Encoding:
 * identity` says what is accepted), 413 over `limit`, 415 for other media types, 400 for bad JSON, for nesting deeper
 * than JSON_MAX_DEPTH, for more than `maxValues` values (the route's bound, see bodyValueCaps), for bytes that are
 * not UTF-8 and for lone surrogate escapes; 422 naming the field of a number not stored as written (inexactNumbers).
 */
export async function parseJsonBody(
  request: Request,
  contentType: string | null | undefined,
  limit: number,
  maxValues = JSON_MAX_VALUES,
): Promise<unknown> {
  if (!identityEncoded(request.headers)) {
    throw new AppError(415, "Compressed request bodies are not accepted; send the body without Content-Encoding", undefined, { "accept-encoding": "identity" });
  }
  const bytes = await readLimited(request, limit);
  // The header itself: Elysia's contentType may be the media type alone, without its parameters.
  return jsonOfBody(bytes, request.headers.get("content-type") ?? contentType, maxValues);
}

/**
 * The JSON value of body bytes already read (parseJsonBody's rules after the size limit), for a caller that keeps
 * the bytes (the writes answered in front of the app hand them to the app when they decline).
 */
export function jsonOfBody(bytes: Uint8Array, contentType: string | null | undefined, maxValues = JSON_MAX_VALUES): unknown {
  const [head, ...params] = (contentType ?? "").toLowerCase().split(";");
  const type = head!.trim();
  if (type !== "" && type !== "application/json" && !type.endsWith("+json")) {
    throw new AppError(415, `Unsupported content type "${type}"; send application/json`);
  }
  // JSON is UTF-8 (RFC 8259): a body declared in another charset would be read as something it is not.
  const charset = params.map((p) => p.trim()).find((p) => p.startsWith("charset="))?.slice(8).replace(/"/g, "");
  if (charset !== undefined && charset !== "utf-8" && charset !== "utf8") {
    throw new AppError(415, `Unsupported charset "${charset}"; send application/json in UTF-8`);
  }
  if (bytes.byteLength === 0) return null;
  const shape = jsonShapeProblem(bytes, JSON_MAX_DEPTH, maxValues);
  if (shape === "depth") throw badRequest(`The request body nests arrays or objects deeper than ${JSON_MAX_DEPTH} levels`);
  if (shape === "values") throw badRequest(`The request body holds more than ${maxValues} values, more than this route accepts`);
  const text = utf8(bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw badRequest("The request body is not valid JSON");
  }
  // A lone surrogate (an escape such as "\ud800" with no pair) is no character: it cannot be stored as UTF-8.
  if (mayEscapeSurrogate(text) && !wellFormed(value)) throw badRequest("The request body holds a lone surrogate escape, which is not a character");
  // A number silently stored as another (9007199254740993 as ...992, 1e-400 as 0) is refused, naming its field.
  if (mayHoldInexactNumber(text)) {
    const fields = inexactNumbers(text);
    // The first few name the problem; thousands of them would make a small body a large answer.
    if (fields.length > 0) throw unprocessable(fields.slice(0, 10).map((field) => ({ field, message: INEXACT_NUMBER_MESSAGE })));
  }
  return value;
}
