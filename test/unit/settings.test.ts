import { test } from "node:test";
import assert from "node:assert/strict";
import { SettingsSchema, DEFAULT_SETTINGS } from "../../src/model/settings.js";
import { readRootConfig, rootPaths } from "../../src/root.js";
import { ErrorCode, InvalidOptionsError, isRelayMeshError } from "../../src/errors.js";
import { tempRoot, writeSettings } from "../helpers.js";

test("SettingsSchema: an empty object parses to the documented defaults", () => {
  const s = SettingsSchema.parse({});
  assert.equal(s.leaseTimeoutMs, 30_000);
  assert.equal(s.maxAttempts, 3);
  assert.equal(s.baseBackoffMs, 1_000);
  assert.equal(s.maxBackoffMs, 60_000);
  assert.equal(s.maxPayloadBytes, 10 * 1024 * 1024);
  assert.equal(s.lowStarvationMaxPicks, 10);
  assert.equal(s.claimPolicy, "capacity");
  assert.equal(s.durability, "full");
  assert.equal(s.pauseWorkerWhenLocalNotAlive, true);
  assert.ok(s.deadAfterMs > s.suspectAfterMs);
  assert.deepEqual(DEFAULT_SETTINGS, s);
});

test("SettingsSchema: given values are kept and the rest defaulted", () => {
  const s = SettingsSchema.parse({ leaseTimeoutMs: 500, durability: "normal", maxAttempts: 7 });
  assert.equal(s.leaseTimeoutMs, 500);
  assert.equal(s.durability, "normal");
  assert.equal(s.maxAttempts, 7);
  assert.equal(s.baseBackoffMs, 1_000);
});

test("SettingsSchema: an unknown field is rejected naming it", () => {
  const r = SettingsSchema.safeParse({ leaseTimeout: 500 });
  assert.equal(r.success, false);
  assert.ok(r.error!.issues.some((i) => i.code === "unrecognized_keys" && i.keys.includes("leaseTimeout")), JSON.stringify(r.error!.issues));
});

test("SettingsSchema: out-of-range and wrongly typed values are rejected at their field", () => {
  for (const [field, value] of [
    ["leaseTimeoutMs", 10], ["maxAttempts", 0], ["maxAttempts", 1.5], ["maxPayloadBytes", 10],
    ["lowStarvationMaxPicks", 0], ["durability", "sometimes"], ["claimPolicy", "random"], ["baseBackoffMs", -1],
    ["leaseTimeoutMs", "30s"],
  ] as const) {
    const r = SettingsSchema.safeParse({ [field]: value });
    assert.equal(r.success, false, `${field}=${JSON.stringify(value)} should be rejected`);
    assert.ok(r.error!.issues.some((i) => i.path[0] === field), `${field}: ${JSON.stringify(r.error!.issues)}`);
  }
});

test("SettingsSchema: maxBackoffMs below baseBackoffMs is rejected naming both fields", () => {
  const r = SettingsSchema.safeParse({ baseBackoffMs: 5_000, maxBackoffMs: 1_000 });
  assert.equal(r.success, false);
  const issue = r.error!.issues.find((i) => i.path[0] === "maxBackoffMs");
  assert.ok(issue, JSON.stringify(r.error!.issues));
  assert.match(issue.message, /baseBackoffMs/);
  // Equal is fine.
  assert.equal(SettingsSchema.safeParse({ baseBackoffMs: 1_000, maxBackoffMs: 1_000 }).success, true);
});

test("SettingsSchema: deadAfterMs must be greater than suspectAfterMs", () => {
  const r = SettingsSchema.safeParse({ suspectAfterMs: 1_000, deadAfterMs: 1_000 });
  assert.equal(r.success, false);
  assert.ok(r.error!.issues.some((i) => i.path[0] === "deadAfterMs"));
});

/** Runs readRootConfig expecting an InvalidOptionsError; returns its message. */
function rejectedMessage(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    assert.ok(isRelayMeshError(error), String(error));
    assert.ok(error instanceof InvalidOptionsError);
    assert.equal(error.code, ErrorCode.INVALID_OPTIONS);
    return error.message;
  }
  assert.fail("readRootConfig should have thrown");
}

test("readRootConfig: a root without settings file gives the defaults and no module agents", (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  const config = readRootConfig(rootPaths(root));
  assert.deepEqual(config.settings, DEFAULT_SETTINGS);
  assert.deepEqual(config.modules, []);
});

test("readRootConfig: the settings file is read and overrides are layered over it", (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeSettings(root, { leaseTimeoutMs: 4_000, maxAttempts: 9 });
  const fromFile = readRootConfig(rootPaths(root)).settings;
  assert.equal(fromFile.leaseTimeoutMs, 4_000);
  assert.equal(fromFile.maxAttempts, 9);
  const layered = readRootConfig(rootPaths(root), { maxAttempts: 2 }).settings;
  assert.equal(layered.leaseTimeoutMs, 4_000);
  assert.equal(layered.maxAttempts, 2);
});

test("readRootConfig: an unknown field in the settings file is rejected naming the file and the field", (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeSettings(root, { leaseTimeoutMs: 4_000, maxAtempts: 2 });
  const message = rejectedMessage(() => readRootConfig(rootPaths(root)));
  assert.match(message, /relaymesh-settings\.json/);
  assert.match(message, /maxAtempts/);
});

test("readRootConfig: an out-of-range value is rejected naming the field", (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeSettings(root, { leaseTimeoutMs: 5 });
  const message = rejectedMessage(() => readRootConfig(rootPaths(root)));
  assert.match(message, /leaseTimeoutMs/);
  assert.match(message, /relaymesh-settings\.json/);
});

test("readRootConfig: maxBackoffMs below baseBackoffMs is rejected, also when the clash comes from an override", (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeSettings(root, { baseBackoffMs: 2_000 });
  const message = rejectedMessage(() => readRootConfig(rootPaths(root), { maxBackoffMs: 1_000 }));
  assert.match(message, /maxBackoffMs/);
  assert.match(message, /baseBackoffMs/);
});

test("readRootConfig: a settings file that is not an object is rejected", (t) => {
  const { root, cleanup } = tempRoot();
  t.after(cleanup);
  writeSettings(root, [1, 2] as unknown as Record<string, unknown>);
  assert.match(rejectedMessage(() => readRootConfig(rootPaths(root))), /relaymesh-settings\.json/);
});
