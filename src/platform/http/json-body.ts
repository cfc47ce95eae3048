// The request body parser every route uses: size limit while reading, JSON only, nesting depth checked before
// JSON.parse. A separate function so whichever way it is registered (global hook or named parser) it is the same.
import { AppError, badRequest, payloadTooLarge } from "./errors.ts";
import { JSON_MAX_DEPTH, JSON_MAX_VALUES, jsonShapeProblem } from "./json-depth.ts";

/** Reads a body, never holding more than `limit` bytes of it: past that, 413 (chunked bodies included). */
export async function readLimited(request: Request, limit: number): Promise<Uint8Array> {
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
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

const decoder = new TextDecoder();

/**
 * Parses a JSON request body: 413 over `limit`, 415 for other media types, 400 for bad JSON, for nesting deeper
 * than JSON_MAX_DEPTH and for more than `maxValues` values (the route's bound, see bodyValueCaps).
 */
export async function parseJsonBody(
  request: Request,
  contentType: string | null | undefined,
  limit: number,
  maxValues = JSON_MAX_VALUES,
): Promise<unknown> {
  const bytes = await readLimited(request, limit);
  const type = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  if (type !== "" && type !== "application/json" && !type.endsWith("+json")) {
    throw new AppError(415, `Unsupported content type "${type}"; send application/json`);
  }
  if (bytes.byteLength === 0) return null;
  const shape = jsonShapeProblem(bytes, JSON_MAX_DEPTH, maxValues);
  if (shape === "depth") throw badRequest(`The request body nests arrays or objects deeper than ${JSON_MAX_DEPTH} levels`);
  if (shape === "values") throw badRequest(`The request body holds more than ${maxValues} values, more than this route accepts`);
  try {
    return JSON.parse(decoder.decode(bytes));
  } catch {
    throw badRequest("The request body is not valid JSON");
  }
}
