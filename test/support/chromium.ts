// Debian's Chromium for the browser tests, as root on a machine without internet: without the background
// networking flags its connections are refused many at a time, and at every start it looks Google's hosts up.
import { afterAll } from "bun:test";
import { rmSync } from "node:fs";
import { chromium, type BrowserContext } from "playwright-core";
import { tempDir } from "../helpers.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-quic",
  "--no-first-run",
  "--disable-component-update",
  "--disable-sync",
];

/** A fresh profile per run (no cached page, no stored state from an earlier run). */
export function launchChromium(profile: string, viewport = { width: 1280, height: 900 }): Promise<BrowserContext> {
  return chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport });
}

export interface ChromiumSuite {
  /** The test file's own working directory (its SQLite file goes here). */
  readonly dir: string;
  /** Launches Chromium on the suite's fresh profile; afterAll closes it before anything else. */
  launch(viewport?: { width: number; height: number }): Promise<BrowserContext>;
  /** Registers a teardown step (an instance to stop, a stand-in to close); they run last registered first. */
  onClose(fn: () => unknown): void;
}

/**
 * The set-up and teardown every browser test file shares: a working directory and a Chromium profile of its
 * own, and one afterAll that closes the browser, then runs the registered steps, then removes both directories.
 * Call it at the top level of the test file.
 */
export function chromiumSuite(name: string): ChromiumSuite {
  const dir = tempDir(`${name}-`);
  const profile = tempDir(`chromium-${name}-`);
  const steps: (() => unknown)[] = [];
  let browser: BrowserContext | undefined;
  afterAll(async () => {
    try {
      await browser?.close();
      for (const step of steps.reverse()) await step();
    } finally {
      for (const d of [dir, profile]) rmSync(d, { recursive: true, force: true });
    }
  }, 60_000);
  return {
    dir,
    launch: async (viewport) => (browser = await launchChromium(profile, viewport)),
    onClose: (fn) => void steps.push(fn),
  };
}
