// The shape of JSON text, measured before JSON.parse: a deeply nested body, or one of many thousands of values,
// is cheap to send and expensive for everything after the parser (the parser itself, validation, error
// messages), so it is refused on sight, in one pass over the bytes.

/** Deeper than any request schema of the contract needs, far shallower than what costs anything to refuse. */
export const JSON_MAX_DEPTH = 32;
/**
 * Values (array elements and object members) in one body: twice the largest a schema accepts (1,000 ids plus
 * up to 50 preferences), so the parse and the validation of a refused body stay small.
 */
export const JSON_MAX_VALUES = 2048;

export type JsonShapeProblem = "depth" | "values";

/**
 * Why the UTF-8 JSON text is refused before parsing, or null. Brackets and commas inside strings do not count
 * (escapes are skipped); one pass, no allocation, stops at the first limit passed. The text need not be valid
 * JSON: the parser judges that afterwards.
 */
export function jsonShapeProblem(bytes: Uint8Array, maxDepth = JSON_MAX_DEPTH, maxValues = JSON_MAX_VALUES): JsonShapeProblem | null {
  let depth = 0;
  let values = 0;
  let inString = false;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x2c) {
      if (++values > maxValues) return "values";
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > maxDepth) return "depth";
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return null;
}

/** True when arrays/objects in the UTF-8 JSON text nest deeper than `max`. */
export const exceedsJsonDepth = (bytes: Uint8Array, max = JSON_MAX_DEPTH) => jsonShapeProblem(bytes, max, Infinity) === "depth";
