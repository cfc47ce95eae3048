// Cache keys made once per id and kept, not concatenated anew per request: a fresh concatenation is flattened
// and hashed again at every Map lookup (the L1, the session state, the rate limiter), a kept string keeps its
// hash. On the cached-read hot path that lookup was the largest cost after building the Response.

/** `make` memoized per argument; bounded: the memo is dropped whole when it holds `max` keys. */
export function keyMemo<A extends string | number>(make: (a: A) => string, max = 10_000): (a: A) => string {
  const memo = new Map<A, string>();
  return (a) => {
    let key = memo.get(a);
    if (key === undefined) {
      if (memo.size >= max) memo.clear();
      key = make(a);
      memo.set(a, key);
    }
    return key;
  };
}
