// The scaler's decision as a pure function: bounds, target, fast up, slow down, band, cooldowns, stale data,
// the primary and the primary region's two lease candidates.
import { describe, expect, setDefaultTimeout, test } from "bun:test";
import { decide, perRegion, type BeatInfo, type MachineInfo, type ScalerPolicy } from "../src/platform/scaler/decide.ts";
import { TEST_TIMEOUT_MS } from "./helpers.ts";
setDefaultTimeout(TEST_TIMEOUT_MS);

const NOW = Date.parse("2026-01-01T12:00:00Z");
const ago = (s: number) => new Date(NOW - s * 1000).toISOString();

const policy = (over: Partial<ScalerPolicy> = {}): ScalerPolicy => ({
  min: () => 1,
  max: () => 5,
  targetPercent: 60,
  capacity: 10,
  upCooldownMs: 60_000,
  downCooldownMs: 600_000,
  primaryRegion: "ams",
  staleAfterMs: 30_000,
  ...over,
});

const m = (id: string, region: string, state = "started"): MachineInfo => ({ id, region, state });
const b = (id: string, region: string, inFlight: number, o: Partial<BeatInfo> = {}): BeatInfo => ({
  id, region, role: "replica", inFlight, cpuPercent: 0, lastHeartbeat: ago(2), ...o,
});

/** ams: the primary p1 and a second candidate a2 (both started). */
const amsMachines = [m("p1", "ams"), m("a2", "ams")];
const amsBeats = (load = 1) => [b("p1", "ams", load, { role: "primary" }), b("a2", "ams", load)];

function one(machines: MachineInfo[], beats: BeatInfo[], region: string, over: Partial<ScalerPolicy> = {}, lastChange = new Map<string, number>()) {
  const all = decide({ now: NOW, machines: [...amsMachines, ...machines], beats: [...amsBeats(), ...beats], policy: policy(over), lastChange });
  return all.find((d) => d.region === region)!;
}

describe("scaling up", () => {
  test("load above target starts stopped machines, straight to the size the load asks for", () => {
    // 2 machines at 9 in flight of 10 = 90% against 60%: ceil(2 * 90 / 60) = 3.
    const d = one([m("s1", "syd"), m("s2", "syd"), m("s3", "syd", "stopped"), m("s4", "syd", "stopped")], [b("s1", "syd", 9), b("s2", "syd", 9)], "syd");
    expect(d).toMatchObject({ action: "up", from: 2, to: 3, start: ["s3"], create: 0 });
    expect(d.reason).toContain("90%");
    const big = one([m("s1", "syd"), m("s3", "syd", "stopped"), m("s4", "syd", "stopped")], [b("s1", "syd", 30)], "syd");
    expect(big).toMatchObject({ action: "up", from: 1, to: 5, start: ["s3", "s4"], create: 2 });
  });

  test("CPU counts as load too; up is never above the maximum", () => {
    const d = one([m("s1", "syd"), m("s2", "syd", "stopped")], [b("s1", "syd", 0, { cpuPercent: 95 })], "syd", { max: () => 2 });
    expect(d).toMatchObject({ action: "up", to: 2, start: ["s2"] });
    const atMax = one([m("s1", "syd"), m("s2", "syd")], [b("s1", "syd", 10), b("s2", "syd", 10)], "syd", { max: () => 2 });
    expect(atMax).toMatchObject({ action: "hold", to: 2 });
  });

  test("the up cooldown holds a second step; the reason says so", () => {
    const d = one([m("s1", "syd"), m("s2", "syd", "stopped")], [b("s1", "syd", 9)], "syd", {}, new Map([["syd", NOW - 30_000]]));
    expect(d).toMatchObject({ action: "hold", from: 1, to: 1, wanted: 2 });
    expect(d.reason).toMatch(/^cooldown \(30 s left\)/);
    const later = one([m("s1", "syd"), m("s2", "syd", "stopped")], [b("s1", "syd", 9)], "syd", {}, new Map([["syd", NOW - 61_000]]));
    expect(later.action).toBe("up");
  });

  test("below the minimum: up, cooldown or not", () => {
    const d = one([m("s1", "syd", "stopped"), m("s2", "syd", "stopped")], [], "syd", { min: (r) => (r === "syd" ? 1 : 1) }, new Map([["syd", NOW]]));
    expect(d).toMatchObject({ action: "up", from: 0, to: 1, start: ["s1"] });
  });
});

describe("scaling down", () => {
  test("idle: one machine at a time, the least busy, after the long cooldown", () => {
    const machines = [m("s1", "syd"), m("s2", "syd"), m("s3", "syd")];
    const beats = [b("s1", "syd", 1), b("s2", "syd", 0), b("s3", "syd", 1)];
    expect(one(machines, beats, "syd")).toMatchObject({ action: "down", from: 3, to: 2, stop: ["s2"] });
    const cooling = one(machines, beats, "syd", {}, new Map([["syd", NOW - 300_000]]));
    expect(cooling).toMatchObject({ action: "hold", to: 3, wanted: 2 });
    expect(cooling.reason).toContain("cooldown (300 s left)");
  });

  test("hysteresis: between half the target and the target it holds; a step that would land above 80% of target holds", () => {
    // 2 machines at 4 of 10 = 40%: inside the band (30%..60%).
    expect(one([m("s1", "syd"), m("s2", "syd")], [b("s1", "syd", 4), b("s2", "syd", 4)], "syd").action).toBe("hold");
    // 2 machines at 2.8 = 28% < 30%, but on one machine 56% > 48%: hold.
    const near = one([m("s1", "syd"), m("s2", "syd")], [b("s1", "syd", 2.8), b("s2", "syd", 2.8)], "syd");
    expect(near.action).toBe("hold");
    const idle = one([m("s1", "syd"), m("s2", "syd")], [b("s1", "syd", 1), b("s2", "syd", 1)], "syd");
    expect(idle).toMatchObject({ action: "down", to: 1 });
  });

  test("never below the minimum", () => {
    expect(one([m("s1", "syd")], [b("s1", "syd", 0)], "syd").action).toBe("hold");
    expect(one([m("s1", "syd")], [b("s1", "syd", 0)], "syd", { min: () => 0 })).toMatchObject({ action: "down", to: 0 });
  });

  test("above the maximum: down to it at once", () => {
    const d = one([m("s1", "syd"), m("s2", "syd"), m("s3", "syd")], [b("s1", "syd", 5), b("s2", "syd", 5), b("s3", "syd", 5)], "syd", { max: () => 1 }, new Map([["syd", NOW]]));
    expect(d).toMatchObject({ action: "down", from: 3, to: 1 });
    expect(d.stop).toHaveLength(2);
  });
});

describe("the primary", () => {
  test("is never stopped, and its region keeps two lease candidates whatever SCALER_MIN says", () => {
    const all = decide({
      now: NOW,
      machines: [m("p1", "ams"), m("a2", "ams"), m("a3", "ams")],
      beats: [b("p1", "ams", 0, { role: "primary" }), b("a2", "ams", 0), b("a3", "ams", 0)],
      policy: policy({ min: () => 0 }),
      lastChange: new Map(),
    });
    expect(all[0]).toMatchObject({ region: "ams", action: "down", from: 3, to: 2 });
    expect(all[0]!.stop).not.toContain("p1");
    const two = decide({ now: NOW, machines: amsMachines, beats: amsBeats(0), policy: policy({ min: () => 0 }), lastChange: new Map() });
    expect(two[0]).toMatchObject({ action: "hold", to: 2 });
  });

  test("the primary region scales down only when a fresh heartbeat names the primary", () => {
    const d = decide({
      now: NOW,
      machines: [m("p1", "ams"), m("a2", "ams"), m("a3", "ams")],
      beats: [b("p1", "ams", 0, { role: "primary", lastHeartbeat: ago(120) }), b("a2", "ams", 0), b("a3", "ams", 0)],
      policy: policy(),
      lastChange: new Map(),
    });
    expect(d[0]).toMatchObject({ action: "hold", to: 3 });
    expect(d[0]!.reason).toContain("primary is not known");
  });

  test("only the primary is stoppable: hold", () => {
    const d = decide({
      now: NOW,
      machines: [m("p1", "syd"), m("s2", "syd", "stopped")],
      beats: [b("p1", "syd", 0, { role: "primary" })],
      policy: policy({ min: () => 0, primaryRegion: "ams" }),
      lastChange: new Map(),
    });
    expect(d[0]).toMatchObject({ action: "hold" });
    expect(d[0]!.reason).toContain("only the primary");
  });
});

describe("stale data", () => {
  test("all heartbeats stale: nothing changes anywhere, bounds included", () => {
    const old = (x: BeatInfo) => ({ ...x, lastHeartbeat: ago(300) });
    const all = decide({
      now: NOW,
      machines: [...amsMachines, m("s1", "syd"), m("s2", "syd", "stopped"), m("i1", "iad", "stopped")],
      beats: [...amsBeats(9), b("s1", "syd", 10)].map(old),
      policy: policy(),
      lastChange: new Map(),
    });
    for (const d of all) {
      expect(d.action).toBe("hold");
      expect(d.to).toBe(d.from);
    }
    expect(all.find((d) => d.region === "syd")!.reason).toContain("stale heartbeat data (newest 300 s old)");
    expect(all.find((d) => d.region === "iad")!.wanted).toBe(1);
  });

  test("a region without fresh heartbeats holds; one where most machines are silent holds", () => {
    expect(one([m("s1", "syd")], [b("s1", "syd", 10, { lastHeartbeat: ago(60) })], "syd").reason).toBe("no fresh heartbeat from this region");
    const d = one([m("s1", "syd"), m("s2", "syd"), m("s3", "syd")], [b("s1", "syd", 10)], "syd");
    expect(d.action).toBe("hold");
    expect(d.reason).toContain("heartbeats missing");
  });
});

test("SCALER_MIN / SCALER_MAX per region", () => {
  expect(perRegion("3")("syd")).toBe(3);
  const f = perRegion("ams=2,syd=1,*=4");
  expect([f("ams"), f("syd"), f("iad")]).toEqual([2, 1, 4]);
  expect(perRegion("ams=2")("iad")).toBe(0);
});
