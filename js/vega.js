// vega-embed alone: the panel and chart widgets load it from a trait of their own (_vega), when the first
// chart is drawn, not before the table (js/vega_loader.js).
export { default } from "vega-embed";
