// What a saved page computes that a kernel computes for a live panel (js/saved.js).
import { test } from "node:test";
import assert from "node:assert/strict";

import { curveRows, diffFromTable } from "../saved.js";
import { decodeTable } from "../table.js";

const b64 = (typed) => Buffer.from(typed.buffer).toString("base64");

test("saved curves decode to the rows the curves chart takes", () => {
  const rows = curveRows([
    { run_id: "a", label: "fit · a", key: "loss", steps: b64(new Int32Array([0, 5, -2])), steps_type: "i4",
      values: b64(new Float32Array([0.5, NaN, -1.25])) },
    { run_id: "b", label: "<b>x</b>", key: "acc", steps: b64(new Float64Array([3e12])), steps_type: "f8",
      values: b64(new Float32Array([1])) },
  ]);
  assert.deepEqual(rows, [
    { run_id: "a", label: "fit · a", key: "loss", step: 0, value: 0.5 },
    { run_id: "a", label: "fit · a", key: "loss", step: 5, value: null },
    { run_id: "a", label: "fit · a", key: "loss", step: -2, value: -1.25 },
    { run_id: "b", label: "<b>x</b>", key: "acc", step: 3e12, value: 1 },
  ]);
});

test("the diff of selected runs holds only what differs, as the kernel's diff does", () => {
  const t = decodeTable({
    n: 3,
    columns: [{ name: "run_id", group: "run", key: "run_id", kind: "text" },
      { name: "label", group: "run", key: "label", kind: "text" },
      { name: "params.lr", group: "params", key: "lr", kind: "number" },
      { name: "params.model", group: "params", key: "model", kind: "text" },
      { name: "metrics.acc", group: "metrics", key: "acc", kind: "number" }],
    data: { run_id: ["a", "b", "c"], label: ["fit · a", "fit · b", "fit · c"],
      "params.lr": new DataView(new Float64Array([0.1, 0.1, NaN]).buffer), "params.model": ["rf", "gb", "rf"],
      "metrics.acc": new DataView(new Float64Array([0.9, 0.95, 0.9]).buffer) },
  });
  assert.deepEqual(diffFromTable(t, ["a"]), {});
  assert.deepEqual(diffFromTable(t, ["a", "c", "zzz"]), {
    runs: [{ run_id: "a", label: "fit · a" }, { run_id: "c", label: "fit · c" }],
    sections: [{ title: "params", rows: [{ key: "lr", values: ["0.1", "—"] }] }],
    source: [],
  });
  assert.deepEqual(diffFromTable(t, ["a", "b"]).sections.map((s) => s.rows.map((r) => r.key)), [["model"], ["acc"]]);
});
