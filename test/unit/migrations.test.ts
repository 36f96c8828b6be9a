import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { MIGRATIONS } from "../../src/store/migrations.js";

/**
 * Released migrations never change (add the next one instead): a store migrated by an older
 * release would silently differ from a new one. Add a line here when a migration is released.
 */
const RELEASED: Record<number, string> = {
  1: "b54d4260d9d106ebbf5a83d3d95d7eb8262b9a9cc05d12293e27e92ec66c30ff",
  2: "a77ce17b27e0a546a9f5cccc2e0ed706f104469f25b989c5057f1982c0397dd4",
  3: "cdae21a1fbc00c34169f6bd0e3493024e05fe393c71f5b39ef5f685860f3628f",
  4: "d4c1310d0112fef576484acee55af7b3f347d15e7d8af2999e830f36ac8356aa",
  5: "3a9e4c846d74e6063452c0908ba9f538eb8fe678c34f59b4614dd6c708e72b2a",
  6: "3018b004f781514fa4acadb707903a356beec2aef123999d4cbe95a203a51545",
  7: "735f42e8db62027ec8580396749b35d2b018a0b0c4a87b5632068dd07f19bcd2",
  8: "38f57fb30ae6a4a3d85cf631a83a75fdd039e7eb30aef52e67c4ebd5b2c1ffa6",
  9: "9633f598955f9370aef9eabb0ab7d5f56476ced7ccfcf6a9a711a061281e6325",
  10: "a3aecc9a13fd55e4f195f0b1ca98348e74b2bfde551dc0b1b7f87dc7d1791ae1",
  11: "dfe03b04d716e3668e53496ad2971a83a660dbee6d6c6db1fb518d6737011c1a",
  12: "eb143904acd19c81a6de3818862d1ee5ac2616f363146343c09675c086970c4f",
  13: "e199381fb4c57a11392de3d32c68e2a15c6cf8c3253a62a2131ff7756c4656a2",
  14: "fba44bde2d68e2354634e6005af4010ca0861d33eca2505dbef1b2177855221d",
};

test("migrations: numbered in increasing order (numbers may be reserved), with both dialects, and no released one was edited", () => {
  MIGRATIONS.forEach((m, i) => {
    if (i > 0) assert.ok(m.id > MIGRATIONS[i - 1]!.id, `migration ${m.id} comes after ${MIGRATIONS[i - 1]!.id}`);
    assert.ok(m.sqlite.trim() && m.pg.trim(), `migration ${m.id} has both dialect texts`);
  });
  for (const [id, hash] of Object.entries(RELEASED)) {
    const m = MIGRATIONS.find((x) => x.id === Number(id));
    assert.ok(m, `released migration ${id} is still there`);
    assert.equal(createHash("sha256").update(`${m.sqlite}\u0000${m.pg}`).digest("hex"), hash, `migration ${id} was edited; add a new one instead`);
  }
});
