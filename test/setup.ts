// Preloaded by bun test (bunfig.toml): every test file works under .tmp/, which .gitignore keeps out.
import { mkdirSync } from "node:fs";
mkdirSync(new URL("../.tmp/", import.meta.url), { recursive: true });
