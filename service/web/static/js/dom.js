// A tiny helper to build elements without innerHTML (no markup parsing, nothing to escape).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const SVG = "http://www.w3.org/2000/svg";

export function s(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined) continue;
    if (name === "text") element.textContent = value;
    else element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) if (child) element.append(child);
  return element;
}

export function percent(fraction, digits = 1) {
  return `${(fraction * 100).toFixed(digits)}%`;
}

// A box that scrolls sideways when its table is wider than the screen. Only a box that really
// scrolls joins the Tab order (keyboard users must be able to scroll it; the rest would be noise).
const overflowWatch = new ResizeObserver((entries) => {
  for (const { target } of entries) {
    if (target.scrollWidth > target.clientWidth + 1) target.setAttribute("tabindex", "0");
    else target.removeAttribute("tabindex");
  }
});

export function scrollBox(label, ...children) {
  const box = h("div", { class: "scroll", role: "region", "aria-label": label }, ...children);
  overflowWatch.observe(box);
  return box;
}
