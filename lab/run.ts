// `bun run lab -- <name> [options]`: the labs (loopback, bounded, not part of `bun test`).
import { main as regions } from "./regions/main.ts";

const [name, ...rest] = process.argv.slice(2);
const labs: Record<string, (args: string[]) => Promise<number>> = { regions };
const lab = name ? labs[name] : undefined;
if (!lab) {
  console.error(`usage: bun run lab -- <${Object.keys(labs).join("|")}> [options]`);
  process.exit(2);
}
process.exit(await lab(rest));
