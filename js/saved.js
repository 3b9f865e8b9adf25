// What a saved page computes that a kernel computes for a live panel, free of the DOM so node's test
// runner covers it (js/test/saved.test.js).
import { formatValue } from "./table.js";

function decode(b64, type) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  if (type === "i4") return new Int32Array(bytes.buffer);
  if (type === "f8") return new Float64Array(bytes.buffer);
  return new Float32Array(bytes.buffer);
}

/** The saved curves (one entry per run and metric, steps and values as base64) as chart rows. */
export function curveRows(curves) {
  const rows = [];
  for (const c of curves) {
    const steps = decode(c.steps, c.steps_type), values = decode(c.values, "f4");
    for (let i = 0; i < steps.length; i++) {
      rows.push({ run_id: c.run_id, label: c.label, key: c.key, step: steps[i], value: Number.isNaN(values[i]) ? null : values[i] });
    }
  }
  return rows;
}

/** What differs between the selected runs, from the table's params, metrics and values (as Python's
 * diff_many gives it to the panel; the source diff needs the notebook). */
export function diffFromTable(table, ids) {
  const index = new Map((table.data.run_id || []).map((id, i) => [id, i]));
  const rows = ids.map((id) => index.get(id)).filter((i) => i !== undefined);
  if (rows.length < 2) return {};
  const sections = [];
  for (const group of ["params", "metrics", "values"]) {
    const changed = [];
    for (const col of table.columns.filter((c) => c.group === group)) {
      const values = rows.map((i) => table.data[col.name][i]);
      if (values.every((v) => v === values[0])) continue;
      changed.push({ key: col.key, values: values.map((v) => (v === null || v === undefined ? "—" : formatValue(v, col.kind))) });
    }
    if (changed.length) sections.push({ title: group, rows: changed });
  }
  const label = table.data.label || table.data.name;
  return { runs: rows.map((i) => ({ run_id: table.data.run_id[i], label: String(label[i]) })), sections, source: [] };
}
