// Generates TypeScript types from an OpenAPI document with openapi-typescript:
//   bun test/support/openapi-types.ts <document.json | http(s)://…/swagger/json> <out.d.ts>
// openapi-typescript builds its output with TypeScript 5's JS API, which the project's TypeScript 7 (native)
// does not ship: its `typescript` import is pointed at the typescript5 package for this process only.
import { plugin } from "bun";

const ts5 = Bun.resolveSync("typescript5", import.meta.dir);
const ts7 = Bun.resolveSync("typescript", Bun.resolveSync("openapi-typescript", import.meta.dir));
const escaped = ts7.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
plugin({
  name: "openapi-typescript on TypeScript 5",
  setup(build) {
    build.onLoad({ filter: new RegExp(`^${escaped}$`) }, () => ({
      contents: `import ts from ${JSON.stringify(ts5)}; export default ts;`,
      loader: "js",
    }));
  },
});

const [source, out] = process.argv.slice(2);
if (!source || !out) {
  console.error("usage: bun test/support/openapi-types.ts <document.json | url> <out.d.ts>");
  process.exit(2);
}
const { default: openapiTS, astToString } = await import("openapi-typescript");
const doc = /^https?:\/\//.test(source) ? await (await fetch(source)).json() : await Bun.file(source).json();
await Bun.write(out, astToString(await openapiTS(doc)));
