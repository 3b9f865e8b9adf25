// The runs table's logic: filtering, sorting, constant columns, selection, brushing, virtual window.
process.env.TZ = "UTC";   // times are shown in the viewer's zone: pin it
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  brushSelect, clickSelect, constantColumns, decodeTable, FilterError, formatValue, parseFilter, resolveColumn,
  MAX_BODY_PX, pagedRange, rowOrder, rowsFor, selectionOf, starredFirst, visibleColumns, windowRange,
} from "../table.js";

function f64(values) {
  const buf = new Float64Array(values.map((v) => (v === null ? NaN : v)));
  return new DataView(buf.buffer);
}

// What the panel receives from Python: number columns as float64 buffers, the rest as lists.
function sample() {
  return decodeTable({
    n: 5,
    columns: [
      { name: "run_id", group: "run", key: "run_id", kind: "text" },
      { name: "name", group: "run", key: "name", kind: "text" },
      { name: "status", group: "run", key: "status", kind: "text" },
      { name: "label", group: "run", key: "label", kind: "text", hidden: true },
      { name: "params.lr", group: "params", key: "lr", kind: "number" },
      { name: "params.model", group: "params", key: "model", kind: "text" },
      { name: "params.seed", group: "params", key: "seed", kind: "number" },
      { name: "params.acc", group: "params", key: "acc", kind: "number" },
      { name: "metrics.acc", group: "metrics", key: "acc", kind: "number" },
      { name: "metrics.done", group: "metrics", key: "done", kind: "bool" },
      { name: "started_at", group: "run", key: "started_at", kind: "time" },
    ],
    data: {
      run_id: ["a1", "b2", "c3", "d4", "e5"],
      name: ["rf", "rf", "sgd", "<img src=x>", "rf big"],
      status: ["finished", "failed", "finished", "finished", "running"],
      label: ["rf · a1", "rf · b2", "sgd · c3", "x · d4", "rf big · e5"],
      "params.lr": f64([0.1, 0.01, null, 0.001, 0.1]),
      "params.model": ["rf", "rf", "sgd", "rf", "rf"],
      "params.seed": f64([1, 1, 1, 1, 1]),
      "params.acc": f64([1, 1, 1, 1, 1]),
      "metrics.acc": f64([0.9, 0.8, 0.95, null, 0.85]),
      "metrics.done": [true, false, true, true, false],
      started_at: f64([Date.UTC(2026, 10, 25, 9), Date.UTC(2026, 10, 26, 9), Date.UTC(2026, 10, 26, 15),
        Date.UTC(2026, 10, 27, 9), null]),
    },
  });
}

test("number columns decode from float64 buffers, NaN becomes null", () => {
  const t = sample();
  assert.deepEqual(t.data["params.lr"], [0.1, 0.01, null, 0.001, 0.1]);
  // a buffer that does not start on an 8-byte boundary (as buffers inside a message can)
  const bytes = new Uint8Array(8 * 2 + 4);
  new DataView(bytes.buffer).setFloat64(4, 2.5, true);
  new DataView(bytes.buffer).setFloat64(12, NaN, true);
  const odd = decodeTable({ n: 2, columns: [{ name: "x", kind: "number" }], data: { x: new DataView(bytes.buffer, 4, 16) } });
  assert.deepEqual(odd.data.x, [2.5, null]);
});

test("filters: comparisons, names by key, bare words, quoted values", () => {
  const t = sample();
  const ids = (text) => rowOrder(t, text).map((i) => t.data.run_id[i]);
  assert.deepEqual(ids("lr>=0.01"), ["a1", "b2", "e5"]);
  assert.deepEqual(ids("params.lr<0.05"), ["b2", "d4"]);
  assert.deepEqual(ids("status=finished lr=0.1"), ["a1"]);
  assert.deepEqual(ids("status!=finished"), ["b2", "e5"]);
  assert.deepEqual(ids("sgd"), ["c3"]);
  assert.deepEqual(ids("RF"), ["a1", "b2", "d4", "e5"]);
  assert.deepEqual(ids('name="rf big"'), ["e5"]);
  assert.deepEqual(ids("name~big"), ["e5"]);
  assert.deepEqual(ids("metrics.acc=null"), ["d4"]);
  assert.deepEqual(ids("done=false"), ["b2", "e5"]);
  assert.deepEqual(ids("  "), ["a1", "b2", "c3", "d4", "e5"]);
  assert.deepEqual(ids("started_at>=2026-11-26 started_at<2026-11-26T12:00"), ["b2"]);
  assert.deepEqual(ids("started_at>=2026-11-26"), ["b2", "c3", "d4"]);
});

test("a bad filter says what is wrong and how to fix it", () => {
  const t = sample();
  assert.throws(() => parseFilter("acc>0.5", t), (e) => e instanceof FilterError && /ambiguous.*params\.acc or metrics\.acc/.test(e.message));
  assert.throws(() => parseFilter("lrr>1", t), /no column "lrr"/);
  assert.throws(() => parseFilter("ac>1", t), /did you mean params\.acc, metrics\.acc/);
  assert.throws(() => parseFilter("lr>abc", t), /params\.lr holds numbers: "abc" is not one/);
  assert.throws(() => parseFilter("lr>=", t), /no value after >=/);
  assert.throws(() => parseFilter('name="rf', t), /unclosed quote/);
  assert.throws(() => parseFilter("done=maybe", t), /true or false/);
  assert.throws(() => parseFilter("started_at>yesterday", t), /is a time: write it as 2026-11-26/);
  assert.equal(resolveColumn("model", t.columns).name, "params.model");
});

test("sorting: ascending, descending, missing values last either way, stable", () => {
  const t = sample();
  const ids = (sort) => rowOrder(t, "", sort).map((i) => t.data.run_id[i]);
  assert.deepEqual(ids({ column: "params.lr", desc: false }), ["d4", "b2", "a1", "e5", "c3"]);
  assert.deepEqual(ids({ column: "params.lr", desc: true }), ["a1", "e5", "b2", "d4", "c3"]);
  assert.deepEqual(ids({ column: "name", desc: false }), ["d4", "a1", "b2", "e5", "c3"]);
  assert.deepEqual(rowOrder(t, "rf", { column: "metrics.acc", desc: true }).map((i) => t.data.run_id[i]),
    ["a1", "e5", "b2", "d4"]);
});

test("columns constant across the shown runs are collapsed, and come back when asked", () => {
  const t = sample();
  const all = rowOrder(t);
  const constant = constantColumns(t, all);
  assert.deepEqual([...constant].sort(), ["params.acc", "params.seed"]);
  // among the rf runs the model is constant too
  const rf = rowOrder(t, "model=rf");
  assert.ok(constantColumns(t, rf).has("params.model"));
  const names = (opts) => visibleColumns(t, constant, opts).map((c) => c.name);
  assert.ok(!names({}).includes("params.seed"));
  assert.ok(!names({}).includes("label"));          // hidden by Python: for the charts only
  assert.ok(names({ showConstant: true }).includes("params.seed"));
  assert.ok(names({ shown: new Set(["params.seed"]) }).includes("params.seed"));
  assert.ok(!names({ hidden: new Set(["params.lr"]) }).includes("params.lr"));
  assert.equal(constantColumns(t, [0]).size, 0);    // one run: nothing is "constant"
});

test("selection by clicks: plain, ctrl toggles, shift extends along the shown order", () => {
  const order = ["a1", "b2", "c3", "d4", "e5"];
  assert.deepEqual(clickSelect([], order, "c3"), ["c3"]);
  assert.deepEqual(clickSelect(["c3"], order, "c3"), []);
  assert.deepEqual(clickSelect(["a1", "c3"], order, "c3"), ["c3"]);
  assert.deepEqual(clickSelect(["a1"], order, "c3", { ctrl: true }), ["a1", "c3"]);
  assert.deepEqual(clickSelect(["a1", "c3"], order, "a1", { ctrl: true }), ["c3"]);
  assert.deepEqual(clickSelect(["b2"], order, "d4", { shift: true, anchor: "b2" }), ["b2", "c3", "d4"]);
  assert.deepEqual(clickSelect([], order, "a1", { shift: true, anchor: "c3" }), ["a1", "b2", "c3"]);
});

test("brushing selects the runs inside the box; a click without a drag selects nothing new", () => {
  const t = sample();
  const order = rowOrder(t);
  assert.deepEqual(brushSelect(t, order, { "params\\.lr": [0.005, 0.2] }), ["a1", "b2", "e5"]);
  assert.deepEqual(brushSelect(t, order, { "params\\.lr": [0.2, 0.005], "metrics\\.acc": [0.86, 1] }), ["a1"]);
  assert.deepEqual(brushSelect(t, order, { "params\\.model": ["sgd"] }), ["c3"]);
  assert.equal(brushSelect(t, order, {}), null);
  assert.equal(brushSelect(t, order, { "params\\.lr": [0.1, 0.1] }), null);
  // brushing respects the table's filter: hidden runs are not selected
  assert.deepEqual(brushSelect(t, rowOrder(t, "status=finished"), { "params\\.lr": [0, 1] }), ["a1", "d4"]);
});

test("only the visible rows (and a margin) are put in the DOM", () => {
  assert.deepEqual(windowRange(0, 286, 26, 10000), [0, 19]);
  assert.deepEqual(windowRange(26 * 5000, 286, 26, 10000), [4992, 5019]);
  assert.deepEqual(windowRange(26 * 9999, 286, 26, 10000), [9991, 10000]);
  assert.deepEqual(windowRange(0, 286, 26, 3), [0, 3]);
  assert.deepEqual(windowRange(0, 286, 26, 0), [0, 0]);
});

test("values are shown as text, compactly", () => {
  assert.equal(formatValue(null, "number"), "");
  assert.equal(formatValue(3, "number"), "3");
  assert.equal(formatValue(0.123456789, "number"), "0.12346");
  assert.equal(formatValue(1e-5, "number"), "1.000e-5");
  assert.equal(formatValue(12345678.9, "number"), "1.235e+7");
  assert.equal(formatValue(-0.5, "number"), "-0.5");             // ASCII minus: pastes into Python
  assert.equal(formatValue(-12345678.9, "number"), "-1.235e+7");
  assert.equal(formatValue(123456.7, "number"), "123460");
  assert.equal(formatValue(2 ** 53, "number"), "9007199254740992");
  assert.equal(formatValue(1e300, "number"), "1.000e+300");
  assert.equal(formatValue(0, "number"), "0");
  assert.equal(formatValue(Infinity, "number"), "Infinity");
  assert.equal(formatValue(Date.UTC(2026, 10, 26, 21, 53, 41, 500), "time"), "2026-11-26 21:53:41");
  assert.equal(formatValue("<b>x</b>", "text"), "<b>x</b>");
  assert.equal(formatValue(false, "bool"), "false");
});

test("charts get rows of only the columns they read, in the table's order", () => {
  const t = sample();
  const rows = rowsFor(t, rowOrder(t, "lr>0.05"), ["run_id", "params.lr", "missing"]);
  assert.deepEqual(rows, [{ run_id: "a1", "params.lr": 0.1 }, { run_id: "e5", "params.lr": 0.1 }]);
});

test("starred runs first keeps the sort within starred and unstarred runs", () => {
  const t = decodeTable({ n: 5, columns: [{ name: "run_id", kind: "text" }, { name: "starred", kind: "bool" }],
    data: { run_id: ["a", "b", "c", "d", "e"], starred: [false, true, null, true, false] } });
  assert.deepEqual(starredFirst(t, [4, 3, 2, 1, 0]), [3, 1, 4, 2, 0]);
  assert.deepEqual(starredFirst({ data: {} }, [2, 0, 1]), [2, 0, 1]);
});

test("a paged table: the rows in view of a million, rows evenly spaced, the body short enough to size", () => {
  const top = pagedRange(0, 286, 26, 1_000_000);
  assert.equal(top.body, MAX_BODY_PX);   // 26 million px would not size in Firefox
  assert.deepEqual([top.start, top.end], [0, 19]);   // as windowRange: 11 rows in view, 8 more
  assert.equal(top.top(0), 0);
  // scrolled to the bottom: the last row is drawn, at the bottom of the viewport
  const end = pagedRange(MAX_BODY_PX - 286, 286, 26, 1_000_000);
  assert.equal(end.end, 1_000_000);
  assert.equal(Math.round(end.top(999_999) + 26), MAX_BODY_PX);
  assert.equal(end.top(999_999) - end.top(999_998), 26);
  // a short paged table scrolls one row per row height, as the whole table does
  const small = pagedRange(260, 286, 26, 300);
  assert.equal(small.body, 300 * 26);
  assert.equal(small.top(10), 260);
  assert.deepEqual([small.start, small.end], [2, 29]);
});

test("the selection as the model holds it: a list, or a paged panel's count and shown ids", () => {
  assert.deepEqual(selectionOf(["a", "b"]), { ids: ["a", "b"], count: 2 });
  assert.deepEqual(selectionOf({ count: 100000, ids: ["a"] }), { ids: ["a"], count: 100000 });
  assert.deepEqual(selectionOf(null), { ids: [], count: 0 });
});
