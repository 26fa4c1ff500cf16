// The drawing pad: strokes from pointer events (mouse, pen, finger), kept as point lists so that
// undo is a redraw. Dark ink on white, like a pen on paper; the service inverts it as it does a scan.

const INK = "#111";
const PAPER = "#fff";
const MIN_EXTENT = 0.1; // of the pad's side: 28 of 280 px, 3 pixels of a 28x28 digit

export class Pad {
  /**
   * @param {HTMLCanvasElement} canvas
   * @param {{onChange: (final: boolean) => void}} handlers final: a stroke ended (or undo/clear)
   */
  constructor(canvas, { onChange }) {
    this.canvas = canvas;
    this.context = canvas.getContext("2d");
    this.strokes = [];
    this.current = null;
    this.width = 20;
    this.onChange = onChange;
    this.redraw();
    canvas.addEventListener("pointerdown", (event) => this.start(event));
    canvas.addEventListener("pointermove", (event) => this.move(event));
    canvas.addEventListener("pointerup", (event) => this.end(event));
    canvas.addEventListener("pointercancel", (event) => this.end(event));
    canvas.addEventListener("keydown", (event) => this.key(event));
  }

  get empty() {
    return this.strokes.length === 0;
  }

  /**
   * Whether the ink spans enough of the pad to be a digit: a dot or a tick at the start of a stroke
   * is not one (the service would answer "no ink found"), so the page waits for more.
   */
  get digitSized() {
    const points = this.strokes.flatMap((stroke) => stroke.points);
    if (!points.length) return false;
    const xs = points.map((p) => p.x);
    const ys = points.map((p) => p.y);
    const extent = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
    return extent >= this.canvas.width * MIN_EXTENT;
  }

  point(event) {
    // The canvas keeps 280x280 pixels whatever size CSS gives it.
    const box = this.canvas.getBoundingClientRect();
    const pressure = event.pointerType === "pen" && event.pressure > 0 ? event.pressure : 0.5;
    return {
      x: ((event.clientX - box.left) * this.canvas.width) / box.width,
      y: ((event.clientY - box.top) * this.canvas.height) / box.height,
      pressure,
    };
  }

  start(event) {
    if (event.button !== 0 && event.pointerType === "mouse") return;
    event.preventDefault();
    this.canvas.setPointerCapture(event.pointerId);
    this.current = { width: this.width, points: [this.point(event)] };
    this.strokes.push(this.current);
    this.redraw();
    this.onChange(false);
  }

  move(event) {
    if (!this.current) return;
    event.preventDefault();
    // Coalesced events keep fast strokes smooth where the browser batches them.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
    for (const each of events.length ? events : [event]) this.current.points.push(this.point(each));
    this.redraw();
    this.onChange(false);
  }

  end(event) {
    if (!this.current) return;
    if (event.type === "pointerup") this.current.points.push(this.point(event));
    this.current = null;
    this.redraw();
    this.onChange(true);
  }

  key(event) {
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "z") {
      event.preventDefault();
      this.undo();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      this.clear();
    }
  }

  undo() {
    if (this.empty) return;
    this.strokes.pop();
    this.redraw();
    this.onChange(true);
  }

  clear() {
    if (this.empty) return;
    this.strokes = [];
    this.redraw();
    this.onChange(true);
  }

  redraw() {
    const c = this.context;
    c.fillStyle = PAPER;
    c.fillRect(0, 0, this.canvas.width, this.canvas.height);
    c.strokeStyle = INK;
    c.fillStyle = INK;
    c.lineCap = "round";
    c.lineJoin = "round";
    for (const stroke of this.strokes) drawStroke(c, stroke);
  }

  /**
   * The drawing as a PNG, the way a user's canvas export reaches the service. Encoded at once with
   * toDataURL (about 2 ms for 280x280): Chromium runs toBlob's encoder in idle time, after the
   * next frame, which added 15-25 ms between the end of a stroke and the request.
   */
  toBlob() {
    const base64 = this.canvas.toDataURL("image/png").slice("data:image/png;base64,".length);
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    return new Blob([bytes], { type: "image/png" });
  }
}

function drawStroke(c, { width, points }) {
  if (points.length === 1) {
    const [p] = points;
    c.beginPath();
    c.arc(p.x, p.y, (width * (0.5 + p.pressure)) / 2, 0, 2 * Math.PI);
    c.fill();
    return;
  }
  // Quadratic curves through the midpoints: a smooth line instead of a polygon; the width follows
  // a pen's pressure (mouse and touch report none and get the middle width).
  for (let i = 1; i < points.length; i++) {
    const a = points[i - 1];
    const b = points[i];
    const before = i > 1 ? midpoint(points[i - 2], a) : a;
    const after = midpoint(a, b);
    c.lineWidth = width * (0.5 + (a.pressure + b.pressure) / 2);
    c.beginPath();
    c.moveTo(before.x, before.y);
    c.quadraticCurveTo(a.x, a.y, after.x, after.y);
    if (i === points.length - 1) c.lineTo(b.x, b.y);
    c.stroke();
  }
}

function midpoint(a, b) {
  return { x: (a.x + b.x) / 2, y: (a.y + b.y) / 2 };
}

/**
 * Send each file chosen in `inputs` (upload, camera). An upload replaces the drawing on `pad`, quietly
 * (no change event): the pad would otherwise disagree with the answer; `buttons` (undo, clear) go off.
 */
export function onUpload(inputs, pad, buttons, send) {
  for (const input of inputs) {
    input.addEventListener("change", () => {
      const [file] = input.files;
      if (!file) return;
      pad.strokes = [];
      pad.redraw();
      for (const button of buttons) button.disabled = true;
      send(file);
      input.value = ""; // choosing the same file again is a new request
    });
  }
}
