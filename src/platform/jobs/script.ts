// A Lua script run by its SHA1, loaded on first use and again after Redis restarts (NOSCRIPT).
import type { Redis } from "../redis.ts";

export class LuaScript {
  readonly sha: string;
  constructor(readonly source: string) {
    this.sha = new Bun.CryptoHasher("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    const options = { keys: [...keys], arguments: args.map(String) };
    try {
      return await redis.evalSha(this.sha, options);
    } catch (err) {
      if (!String((err as Error)?.message ?? "").startsWith("NOSCRIPT")) throw err;
      return redis.eval(this.source, options);
    }
  }
}
