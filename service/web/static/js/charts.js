// Small SVG charts drawn in the browser from the cards' numbers: no charting library.

import { h, s, scrollBox } from "./dom.js";

// Colour-blind-safe palette (Okabe and Ito), one colour per model, stable across charts.
export const PALETTE = ["#0072b2", "#e69f00", "#009e73", "#cc79a7", "#56b4e9", "#d55e00", "#000000", "#f0e442"];

const WIDTH = 560;
const HEIGHT = 280;
const MARGIN = { left: 56, right: 12, top: 16, bottom: 36 };

/**
 * A line chart of several series over epochs.
 * @param {{title: string, series: {name: string, color: string, points: [number, number][]}[],
 *          format: (y: number) => string, yFrom?: number, xLabel: string}} spec
 */
export function lineChart({ title, series, format, yFrom = 0, xLabel }) {
  const xs = series.flatMap((one) => one.points.map(([x]) => x));
  // The first epochs sit far below the rest; start the axis where the curves settle.
  const ys = series.flatMap((one) => one.points.filter(([x]) => x > yFrom).map(([, y]) => y));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const pad = (y1 - y0) * 0.05 || 0.01;
  y0 -= pad;
  y1 += pad;
  const plotW = WIDTH - MARGIN.left - MARGIN.right;
  const plotH = HEIGHT - MARGIN.top - MARGIN.bottom;
  const px = (x) => MARGIN.left + ((x - x0) / (x1 - x0 || 1)) * plotW;
  const py = (y) => MARGIN.top + (1 - (y - y0) / (y1 - y0)) * plotH;

  const clipId = `clip-${Math.random().toString(36).slice(2)}`;
  const svg = s("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": title },
    s("title", { text: title }),
    s("defs", {}, s("clipPath", { id: clipId },
      s("rect", { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH }))));

  for (const y of ticks(y0, y1, 5)) {
    svg.append(
      s("line", { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: py(y), y2: py(y), class: "grid" }),
      s("text", { x: MARGIN.left - 6, y: py(y) + 4, "text-anchor": "end", class: "tick", text: format(y) }),
    );
  }
  for (const x of ticks(x0, x1, 6)) {
    svg.append(s("text", { x: px(x), y: HEIGHT - MARGIN.bottom + 16, "text-anchor": "middle", class: "tick", text: String(x) }));
  }
  svg.append(
    s("text", { x: MARGIN.left + plotW / 2, y: HEIGHT - 4, "text-anchor": "middle", class: "axis-label", text: xLabel }),
    s("rect", { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, class: "frame" }),
  );
  const lines = s("g", { "clip-path": `url(#${clipId})` });
  for (const one of series) {
    const d = one.points.map(([x, y], i) => `${i ? "L" : "M"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join("");
    lines.append(s("path", { d, fill: "none", stroke: one.color, "stroke-width": 1.8, class: "series", "data-series": one.name },
      s("title", { text: one.name })));
  }
  svg.append(lines);

  return h("figure", { class: "chart-figure" }, h("figcaption", { text: title }), svg, legend(series));
}

export function legend(series) {
  return h("ul", { class: "legend" }, series.map((one) => {
    const swatch = h("span", { class: "swatch" });
    swatch.style.backgroundColor = one.color;
    return h("li", {}, swatch, one.name);
  }));
}

/** About `count` round tick values between a and b. */
function ticks(a, b, count) {
  const raw = (b - a) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((m) => m >= raw);
  const out = [];
  for (let v = Math.ceil(a / step) * step; v <= b + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

/** The confusion matrix as a table (readable by screen readers), shaded by count. */
export function confusionMatrix(matrix, caption) {
  const offDiagonalMax = Math.max(1, ...matrix.flatMap((row, i) => row.filter((_, j) => j !== i)));
  const rowMax = matrix.map((row) => Math.max(1, ...row));
  const head = h("tr", {}, h("th", { scope: "col", class: "corner", text: "true \\ predicted" }),
    matrix.map((_, j) => h("th", { scope: "col", text: j })));
  const body = matrix.map((row, i) => h("tr", {}, h("th", { scope: "row", text: i }), row.map((count, j) => {
    const cell = h("td", { text: count || "", title: `true ${i}, predicted ${j}: ${count}` });
    if (i === j) {
      cell.className = "hit";
      cell.style.backgroundColor = `rgba(0, 114, 178, ${(0.15 + 0.6 * (count / rowMax[i])).toFixed(3)})`;
    } else if (count) {
      cell.className = "miss";
      // At most 0.7 opaque: the dark count on it keeps a 4.5:1 contrast (WCAG AA).
      cell.style.backgroundColor = `rgba(213, 94, 0, ${(0.12 + 0.58 * (count / offDiagonalMax)).toFixed(3)})`;
    }
    return cell;
  })));
  return scrollBox(caption,
    h("table", { class: "confusion" }, h("caption", { text: caption }), h("thead", {}, head), h("tbody", {}, body)));
}
