// The runs table's logic, free of the DOM so node's test runner covers it (js/test/table.test.js).
// The table arrives as columns: {columns: [{name, group, key, kind, hidden}], data: {name: [values]}, n}.
import { formatLocale } from "d3-format";
import { timeFormat } from "d3-time-format";

export class FilterError extends Error {}

// Number columns arrive as little-endian float64 buffers (DataView) with NaN for missing values;
// everything else here wants plain arrays with null.
export function decodeTable(table) {
  const data = {};
  for (const col of table.columns) {
    const raw = table.data[col.name];
    if (raw instanceof DataView || ArrayBuffer.isView(raw) || raw instanceof ArrayBuffer) {
      const bytes = raw instanceof ArrayBuffer ? raw : raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength);
      const f = new Float64Array(bytes);
      const out = new Array(f.length);
      for (let i = 0; i < f.length; i++) out[i] = Number.isNaN(f[i]) ? null : f[i];
      data[col.name] = out;
    } else {
      data[col.name] = raw;
    }
  }
  return { ...table, data };
}

const OPS = [">=", "<=", "!=", "=", ">", "<", "~"];
// starred and note stay in view even when no run has one yet: they are edited in place
const ALWAYS_SHOWN = new Set(["run_id", "name", "status", "started_at", "starred", "note"]);

// Split a filter on spaces, keeping "quoted values" whole.
function tokens(text) {
  const out = [];
  const re = /(?:[^\s"]+|"[^"]*")+/g;
  let m;
  while ((m = re.exec(text)) !== null) out.push(m[0]);
  if ((text.match(/"/g) || []).length % 2) throw new FilterError('unclosed quote: add the closing "');
  return out;
}

// A column named by its full name ("params.lr") or, when unique, by its key ("lr").
export function resolveColumn(name, columns) {
  const exact = columns.find((c) => c.name === name);
  if (exact) return exact;
  const byKey = columns.filter((c) => c.key === name);
  if (byKey.length === 1) return byKey[0];
  if (byKey.length > 1) {
    throw new FilterError(`"${name}" is ambiguous: write ${byKey.map((c) => c.name).join(" or ")}`);
  }
  const near = columns.filter((c) => c.name.includes(name)).map((c) => c.name).slice(0, 4);
  throw new FilterError(`no column "${name}"${near.length ? `; did you mean ${near.join(", ")}?` : ""}`);
}

function unquote(v) {
  return v.length >= 2 && v.startsWith('"') && v.endsWith('"') ? v.slice(1, -1) : v;
}

function compare(op, a, b) {
  switch (op) {
    case "=": return a === b;
    case "!=": return a !== b;
    case ">": return a > b;
    case "<": return a < b;
    case ">=": return a >= b;
    case "<=": return a <= b;
    default: return false;
  }
}

// "lr>=0.01 status=finished rf" -> a predicate over row indices. Bare words match any text cell.
export function parseFilter(text, table) {
  const columns = table.columns;
  const preds = [];
  for (const tok of tokens(text.trim())) {
    const op = OPS.map((o) => [o, tok.indexOf(o)]).filter(([, i]) => i > 0)
      .sort((a, b) => a[1] - b[1] || b[0].length - a[0].length)[0];
    if (!op) {
      const word = unquote(tok).toLowerCase();
      const textCols = columns.filter((c) => c.kind === "text" || c.kind === "bool");
      preds.push((i) => textCols.some((c) => {
        const v = table.data[c.name][i];
        return v !== null && v !== undefined && String(v).toLowerCase().includes(word);
      }));
      continue;
    }
    const [symbol, at] = op;
    const name = tok.slice(0, at);
    const raw = unquote(tok.slice(at + symbol.length));
    if (raw === "") throw new FilterError(`"${tok}" has no value after ${symbol}`);
    const col = resolveColumn(name, columns);
    const values = table.data[col.name];
    if (symbol === "~") {
      const needle = raw.toLowerCase();
      preds.push((i) => values[i] !== null && String(values[i]).toLowerCase().includes(needle));
      continue;
    }
    if (col.kind === "number") {
      const num = Number(raw);
      if (raw === "null") {
        preds.push((i) => (symbol === "!=" ? values[i] !== null : values[i] === null));
        continue;
      }
      if (Number.isNaN(num)) throw new FilterError(`${col.name} holds numbers: "${raw}" is not one`);
      preds.push((i) => values[i] !== null && compare(symbol, values[i], num));
    } else if (col.kind === "time") {
      const when = Date.parse(raw.length === 10 ? `${raw}T00:00:00` : raw);   // a date is local midnight
      if (Number.isNaN(when)) throw new FilterError(`${col.name} is a time: write it as 2026-11-26 or 2026-11-26T14:30`);
      preds.push((i) => values[i] !== null && compare(symbol, values[i], when));
    } else if (col.kind === "bool") {
      const want = raw === "true" ? true : raw === "false" ? false : null;
      if (want === null) throw new FilterError(`${col.name} is true or false, not "${raw}"`);
      preds.push((i) => compare(symbol, values[i], want));
    } else {
      preds.push((i) => values[i] !== null && compare(symbol, String(values[i]), raw));
    }
  }
  return (i) => preds.every((p) => p(i));
}

// Row indices that pass the filter, sorted; nulls last in either direction; stable.
export function rowOrder(table, filterText = "", sort = null) {
  const pred = filterText.trim() ? parseFilter(filterText, table) : null;
  const order = [];
  for (let i = 0; i < table.n; i++) if (!pred || pred(i)) order.push(i);
  if (sort && table.data[sort.column]) {
    const values = table.data[sort.column];
    const dir = sort.desc ? -1 : 1;
    order.sort((a, b) => {
      const va = values[a], vb = values[b];
      const na = va === null || va === undefined, nb = vb === null || vb === undefined;
      if (na || nb) return na === nb ? a - b : na ? 1 : -1;
      if (va < vb) return -dir;
      if (va > vb) return dir;
      return a - b;
    });
  }
  return order;
}

// The same order with starred runs first (stable: the sort holds within each part).
export function starredFirst(table, order) {
  const starred = table.data.starred;
  if (!starred) return order;
  return [...order.filter((i) => starred[i] === true), ...order.filter((i) => starred[i] !== true)];
}

// Columns whose value is the same in every shown row (collapsed by default: they tell nothing apart).
export function constantColumns(table, order) {
  const out = new Set();
  if (order.length < 2) return out;
  for (const col of table.columns) {
    if (ALWAYS_SHOWN.has(col.name)) continue;
    const values = table.data[col.name];
    const first = values[order[0]];
    if (order.every((i) => values[i] === first)) out.add(col.name);
  }
  return out;
}

// Which columns the table draws, given what the user chose.
export function visibleColumns(table, constant, { shown = new Set(), hidden = new Set(), showConstant = false } = {}) {
  return table.columns.filter((c) => {
    if (hidden.has(c.name)) return false;
    if (shown.has(c.name)) return true;
    if (c.hidden) return false;
    return showConstant || !constant.has(c.name);
  });
}

// The slice of rows to put in the DOM for a scroll position: only what is visible, plus a margin.
export function windowRange(scrollTop, viewport, rowHeight, n, overscan = 8) {
  const start = Math.max(0, Math.floor(scrollTop / rowHeight) - overscan);
  const end = Math.min(n, Math.ceil((scrollTop + viewport) / rowHeight) + overscan);
  return [start, Math.max(start, end)];
}

// The selection as the model holds it: a list of run ids, or (a paged panel, whose selection may be
// 100,000 runs) {count, ids}, the ids being those the page shows.
export function selectionOf(value) {
  if (Array.isArray(value)) return { ids: value, count: value.length };
  if (value && typeof value === "object") return { ids: value.ids || [], count: value.count || 0 };
  return { ids: [], count: 0 };
}

// The rows of a paged table in view: the first (fractional) row at the top and the slice to draw.
// Past ~15 million px browsers stop sizing an element (Firefox), so a very long table scrolls a
// shorter body and each pixel stands for more than one row's height.
export const MAX_BODY_PX = 15_000_000;
export function pagedRange(scrollTop, viewport, rowHeight, total, overscan = 8) {
  const body = Math.min(total * rowHeight, MAX_BODY_PX);
  // the scroll range [0, body - viewport] maps onto the rows' [0, total * rowHeight - viewport], so that
  // the bottom of the scroll shows the last row
  const scale = body > viewport ? (total * rowHeight - viewport) / (body - viewport) : 1;
  const first = (scrollTop * scale) / rowHeight;
  const start = Math.max(0, Math.floor(first) - overscan);
  const end = Math.min(total, Math.ceil(first + viewport / rowHeight) + overscan);
  // row r is drawn at top(r): rows stay rowHeight apart, and the first one lines up with scrollTop
  const top = (r) => scrollTop + (r - first) * rowHeight;
  return { body, start, end: Math.max(start, end), top };
}

// A click on a run: plain click selects it alone (or clears it if it was the only one),
// ctrl/cmd toggles it, shift extends from the last clicked run along the shown order.
export function clickSelect(selected, orderedIds, id, { ctrl = false, shift = false, anchor = null } = {}) {
  if (shift && anchor !== null && orderedIds.includes(anchor)) {
    const a = orderedIds.indexOf(anchor), b = orderedIds.indexOf(id);
    const range = orderedIds.slice(Math.min(a, b), Math.max(a, b) + 1);
    return [...new Set([...selected, ...range])];
  }
  if (ctrl || shift) {
    return selected.includes(id) ? selected.filter((s) => s !== id) : [...selected, id];
  }
  return selected.length === 1 && selected[0] === id ? [] : [id];
}

// Runs inside a brush: {field: [lo, hi]} for numbers, {field: [a, b, c]} for categories.
export function brushSelect(table, order, brush) {
  const fields = Object.entries(brush || {});
  if (!fields.length) return null;
  // a click without a drag makes an empty brush: that is a click, not a selection of nothing
  const flat = fields.every(([, r]) => r.length === 2 && typeof r[0] === "number" && r[0] === r[1]);
  if (flat) return null;
  const tests = fields.map(([field, range]) => {
    const name = field.replace(/\\(.)/g, "$1");
    const values = table.data[name];
    if (!values) return () => false;
    if (range.length === 2 && typeof range[0] === "number" && typeof range[1] === "number") {
      const lo = Math.min(range[0], range[1]), hi = Math.max(range[0], range[1]);
      return (i) => values[i] !== null && values[i] >= lo && values[i] <= hi;
    }
    const set = new Set(range);
    return (i) => set.has(values[i]);
  });
  const ids = table.data.run_id;
  return order.filter((i) => tests.every((t) => t(i))).map((i) => ids[i]);
}

// d3's formatters (already inside the vega bundle, so they cost nothing) with an ASCII minus:
// d3's default is U+2212, which reads well but breaks a value copied from the table into Python.
const numbers = formatLocale({ decimal: ".", thousands: ",", grouping: [3], currency: ["", ""], minus: "-" });
const integer = numbers.format("d");
const scientific = numbers.format(".3e");
const decimal = numbers.format(".5~r");
const localTime = timeFormat("%Y-%m-%d %H:%M:%S");   // the viewer's time zone

export function formatValue(value, kind) {
  if (value === null || value === undefined) return "";
  if (kind === "number") {
    const abs = Math.abs(value);
    if (Number.isInteger(value) && abs < 1e16) return integer(value);
    if (!Number.isFinite(value)) return String(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? scientific(value) : decimal(value);
  }
  if (kind === "time") return localTime(new Date(value));   // milliseconds since the epoch
  return String(value);
}

// Row objects for Vega (the charts take rows, the table keeps columns).
export function rowsFor(table, order, fields = null) {
  const names = (fields || table.columns.map((c) => c.name)).filter((n) => table.data[n]);
  return order.map((i) => {
    const row = {};
    for (const name of names) row[name] = table.data[name][i];
    return row;
  });
}
