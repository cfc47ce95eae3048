import { defineConfig } from "drizzle-kit";

// No `casing` option here or in drizzle(): column names are spelled out in the schema.
export default defineConfig({
  dialect: "sqlite",
  schema: "./src/platform/db/schema/index.ts",
  out: "./drizzle",
  dbCredentials: { url: process.env.DATABASE_URL ?? "file:./data/app.db" },
});
