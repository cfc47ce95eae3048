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
 * JSON: the parser judges that afterwards. A string is skipped with a native search for its closing quote, so
 * a body that is one long string (of escapes, say) costs a memchr, not a loop in JavaScript per byte.
 */
export function jsonShapeProblem(bytes: Uint8Array, maxDepth = JSON_MAX_DEPTH, maxValues = JSON_MAX_VALUES): JsonShapeProblem | null {
  let depth = 0;
  let values = 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === 0x22) {
      i = closingQuote(bytes, i);
      if (i < 0) return null;
    } else if (b === 0x2c) {
      if (++values > maxValues) return "values";
    } else if (b === 0x5b || b === 0x7b) {
      if (++depth > maxDepth) return "depth";
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return null;
}

/** The index of the quote that closes the string opened at `open`, or -1 when the text ends inside it. */
function closingQuote(bytes: Uint8Array, open: number): number {
  let q = open;
  for (;;) {
    q = bytes.indexOf(0x22, q + 1);
    if (q < 0) return -1;
    // Escaped when an odd number of backslashes precede it (each run of them is counted once: linear overall).
    let k = q - 1;
    while (bytes[k] === 0x5c) k--;
    if ((q - 1 - k) % 2 === 0) return q;
  }
}

/** True when arrays/objects in the UTF-8 JSON text nest deeper than `max`. */
export const exceedsJsonDepth = (bytes: Uint8Array, max = JSON_MAX_DEPTH) => jsonShapeProblem(bytes, max, Infinity) === "depth";
