// DOM helpers shared by every widget. Text goes in through textContent only, so a string from the
// store (a run named "<img onerror=...>") is shown as text, never parsed as HTML.

/** An element with an optional class and text. */
export function h(tag, cls, text) {
  const el = document.createElement(tag);
  if (cls) el.className = cls;
  if (text !== undefined && text !== null) el.textContent = text;
  return el;
}

/** A labelled <select> of [value, text] pairs that calls onChange with the chosen value. */
export function select(options, value, onChange, label) {
  const wrap = h("label", "nbt-pick");
  wrap.append(h("span", null, label));
  const sel = h("select");
  for (const [v, text] of options) {
    const o = h("option", null, text);
    o.value = v;
    if (v === value) o.selected = true;
    sel.append(o);
  }
  sel.addEventListener("change", () => onChange(sel.value));
  wrap.append(sel);
  return wrap;
}
