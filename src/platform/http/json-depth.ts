// Nesting depth of JSON text, measured before JSON.parse: a deeply nested body is cheap to send and expensive
// for everything after the parser (validation, error messages, the stack), so it is refused on sight.

/** Deeper than any request schema of the contract needs, far shallower than what costs anything to refuse. */
export const JSON_MAX_DEPTH = 32;

/**
 * True when arrays/objects in the UTF-8 JSON text nest deeper than `max`. One pass, no allocation; stops at the
 * first level past `max`. Brackets inside strings do not count (escapes are skipped); the text need not be
 * valid JSON, the parser judges that afterwards.
 */
export function exceedsJsonDepth(bytes: Uint8Array, max = JSON_MAX_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (inString) {
      if (b === 0x5c) i++;
      else if (b === 0x22) inString = false;
    } else if (b === 0x22) inString = true;
    else if (b === 0x5b || b === 0x7b) {
      if (++depth > max) return true;
    } else if (b === 0x5d || b === 0x7d) depth--;
  }
  return false;
}
