// The layering of src/ as docs/architecture.md states it, read from the import statements themselves.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { ROOT, TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

/** Each src file and the src files it imports (relative specifiers, static and type-only imports and re-exports). */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of new Bun.Glob("src/**/*.ts").scanSync(ROOT)) {
    const text = readFileSync(resolve(ROOT, file), "utf8");
    const targets = [...text.matchAll(/^(?:import|export)\s[^;]*?\sfrom\s+"(\.[^"]+\.ts)"/gms)].map((m) => relative(ROOT, resolve(dirname(resolve(ROOT, file)), m[1]!)));
    graph.set(file, targets);
  }
  return graph;
}

/** The import cycles of `graph`, each as the files of one strongly connected component (Tarjan). */
function cycles(graph: Map<string, string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!graph.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(component.sort());
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

/** The feature folders of src/modules and the other feature folders each imports, from the file graph. */
function featureGraph(graph: Map<string, string[]>): Map<string, string[]> {
  const folder = (f: string) => /^src\/modules\/([^/]+)\//.exec(f)?.[1];
  const folders = new Map<string, Set<string>>();
  for (const [f, targets] of graph) {
    const from = folder(f);
    if (from === undefined) continue;
    const to = folders.get(from) ?? new Set<string>();
    folders.set(from, to);
    for (const t of targets) {
      const target = folder(t);
      if (target !== undefined && target !== from) to.add(target);
    }
  }
  return new Map([...folders].map(([f, to]) => [f, [...to].sort()]));
}

const arrows = (graph: Map<string, string[]>, from: (f: string) => boolean, to: (f: string) => boolean) =>
  [...graph].flatMap(([f, targets]) => targets.filter((t) => from(f) && to(t)).map((t) => `${f} -> ${t}`));

describe("the layers of src/", () => {
  const graph = importGraph();

  test("the walk sees the code (the composition root imports platform and features)", () => {
    expect(graph.size).toBeGreaterThan(50);
    expect(graph.get("src/main/features.ts")).toContain("src/modules/users/index.ts");
    expect(graph.get("src/main/platform.ts")).toContain("src/platform/db/client.ts");
  });

  test("platform never imports the composition root, a feature or the configuration", () => {
    const up = (t: string) => t.startsWith("src/main/") || t.startsWith("src/modules/") || t === "src/config.ts";
    expect(arrows(graph, (f) => f.startsWith("src/platform/"), up)).toEqual([]);
  });

  test("only the composition root and the entry points read the configuration", () => {
    const allowed = (f: string) => f.startsWith("src/main/") || ["src/index.ts", "src/cluster-cli.ts", "src/migrate-cli.ts", "src/users-cli.ts"].includes(f);
    expect(arrows(graph, (f) => !allowed(f), (t) => t === "src/config.ts")).toEqual([]);
  });

  test("features never import the composition root (they get a slice of it, not AppDeps)", () => {
    expect(arrows(graph, (f) => f.startsWith("src/modules/"), (t) => t.startsWith("src/main/"))).toEqual([]);
  });

  test("no import cycles", () => {
    expect(cycles(graph)).toEqual([]);
  });

  test("the feature folders import each other without a cycle (a feature stands on the ones below it)", () => {
    const features = featureGraph(graph);
    // The walk sees the folders and their arrows: a post needs its user, so posts stands on users.
    expect(features.size).toBeGreaterThan(10);
    expect(features.get("posts")).toContain("users");
    expect(cycles(features)).toEqual([]);
  });
});
