// JSON lines on stdout. Fields named like secrets are redacted before a line is written.
import { writeSync } from "node:fs";

export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };
const SECRET_KEY = /pass(word)?|secret|token|authorization|hash|cookie/i;

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  /**
   * An info line whose fields the caller has already written as JSON members (`"a":1,"b":"x"`, no braces),
   * for the per-request line. The caller vouches that they are valid JSON and name no secret.
   */
  infoJson(msg: string, fieldsJson: string): void;
  /**
   * infoJson with the message and the leading members fixed once (`fixedJson`), for a line written very
   * often: each call passes only the members that vary, and the line is built from a few pieces.
   */
  preparedInfo(msg: string, fixedJson: string): (varyingJson: string) => void;
  child(fields: Record<string, unknown>): Logger;
}

const RESERVED = new Set(["time", "level", "msg"]);

/** Field names repeat (every request line has the same ones): remember which are secret. */
const secretKeys = new Map<string, boolean>();
function isSecret(k: string): boolean {
  let s = secretKeys.get(k);
  if (s === undefined) {
    s = SECRET_KEY.test(k);
    if (secretKeys.size < 10_000) secretKeys.set(k, s);
  }
  return s;
}

function redact(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in fields) {
    const v = fields[k];
    if (isSecret(k)) out[k] = "[redacted]";
    else if (v instanceof Error) out[k] = { name: v.name, message: v.message };
    else out[k] = v;
  }
  return out;
}

// One ISO timestamp per millisecond: under load many lines share it.
let isoMs = 0;
let iso = "";
function now(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

// stdout lines are gathered and written at most FLUSH_MS after the first of them (or at once at 64 KiB), not
// one write per line. Under load that is one write of a few hundred lines instead of one per event-loop turn,
// which saves the system calls more than the instructions. Lines are kept without their newline (one string
// piece less per line to build) and joined with it.
//
// The write is synchronous, as Node does for pipes and files on Linux: a line is with the reader (or the
// pipe's buffer) once written, so process.exit right after cannot drop it, whatever a slow log reader does.
// Should stdout be non-blocking (a write would wait: EAGAIN), the rest goes through process.stdout, which
// queues it, and so does everything after, to keep the order; pending lines are written at exit.
const FLUSH_MS = 10;
let pending: string[] = [];
let pendingBytes = 0;
let flushScheduled = false;
let queuedStdout = false;
function takePending(): string {
  const chunk = pending.join("\n") + "\n";
  pending = [];
  pendingBytes = 0;
  return chunk;
}
function writeOut(chunk: string): void {
  if (queuedStdout) {
    process.stdout.write(chunk);
    return;
  }
  let rest: Uint8Array | undefined;
  try {
    const written = writeSync(1, chunk);
    const total = Buffer.byteLength(chunk);
    if (written >= total) return;
    // A partial write (a signal, a full pipe): the remaining bytes, until all are written.
    rest = Buffer.from(chunk).subarray(written);
    while (rest.byteLength > 0) rest = rest.subarray(writeSync(1, rest));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EAGAIN") return; // stdout is gone: nothing to write to
    queuedStdout = true;
    process.stdout.write(rest ?? chunk);
  }
}
function flushStdout(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  writeOut(takePending());
}
process.once("exit", flushStdout);
function writeStdout(line: string): void {
  pending.push(line);
  pendingBytes += line.length + 1;
  if (pendingBytes >= 65_536) flushStdout();
  else if (!flushScheduled) {
    flushScheduled = true;
    setTimeout(flushStdout, FLUSH_MS).unref();
  }
}

export function createLogger(
  level: LogLevel,
  base: Record<string, unknown> = {},
  write: (line: string) => void = writeStdout,
): Logger {
  const min = ORDER[level];
  const baseKeys = new Set(Object.keys(base));
  const baseJson = baseKeys.size > 0 ? "," + JSON.stringify(base).slice(1, -1) : "";
  const generic = (lvl: string, msg: string, fields?: Record<string, unknown>) =>
    JSON.stringify({ time: now(), level: lvl, msg, ...base, ...(fields ? redact(fields) : {}) });
  // The same bytes as `generic`, built without merging objects: fields that collide with the base or the
  // reserved keys, name a secret, or hold an Error take the generic way.
  // Per field name: may it be written as it is (not reserved, not in the base, not a secret)?
  const plainKeys = new Map<string, boolean>();
  const isPlain = (k: string) => {
    let p = plainKeys.get(k);
    if (p === undefined) {
      p = !RESERVED.has(k) && !baseKeys.has(k) && !isSecret(k);
      if (plainKeys.size < 10_000) plainKeys.set(k, p);
    }
    return p;
  };
  const emit = (lvl: Exclude<LogLevel, "silent">, msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    let body = "";
    if (fields !== undefined) {
      const keys = Object.keys(fields);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i]!;
        if (!isPlain(k) || fields[k] instanceof Error) {
          write(generic(lvl, msg, fields));
          return;
        }
      }
      if (keys.length > 0) {
        const json = JSON.stringify(fields);
        if (json.length > 2) body = "," + json.slice(1, -1);
      }
    }
    write('{"time":"' + now() + '","level":"' + lvl + '","msg":' + JSON.stringify(msg) + baseJson + body + "}");
  };
  const infoEnabled = ORDER.info >= min;
  // An info line with its message and leading members fixed: the same bytes as `emit`, from a few pieces.
  const infoLine = (msg: string, fixedJson: string) => {
    const head = '","level":"info","msg":' + JSON.stringify(msg) + baseJson + (fixedJson ? "," + fixedJson : "");
    return (json: string) => write('{"time":"' + now() + head + (json ? "," + json + "}" : "}"));
  };
  // infoJson's message is the same on every call of the request log: its prepared line is kept.
  let lastMsg: string | undefined;
  let lastLine: (json: string) => void = () => {};
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    infoJson: (m, json) => {
      if (!infoEnabled) return;
      if (m !== lastMsg) {
        lastMsg = m;
        lastLine = infoLine(m, "");
      }
      lastLine(json);
    },
    preparedInfo: (m, fixedJson) => (infoEnabled ? infoLine(m, fixedJson) : () => {}),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
    child: (fields) => createLogger(level, { ...base, ...fields }, write),
  };
}
