// "Read a number": write several digits on a wide pad, or upload/photograph an image of a number,
// send it to POST /read, and show the string with each digit's box drawn over the image.

import { readNumber } from "./api.js";
import { h, percent } from "./dom.js";
import { LatestWins } from "./latest.js";
import { Pad, onUpload } from "./pad.js";

export function setUpRead() {
  const $ = (id) => document.getElementById(id);
  const status = $("read-status");
  const undo = $("read-undo");
  const clear = $("read-clear");
  const view = new ReadingView();

  const queue = new LatestWins(read, { onIdle: () => view.busy(false) }); // requests: {image, source}
  const submit = (request) => queue.submit(request);

  const pad = new Pad($("read-pad"), {
    onChange(final) {
      undo.disabled = clear.disabled = pad.empty;
      if (pad.empty) {
        queue.drop();
        view.reset();
        status.textContent = "Write a number or upload an image of one.";
        return;
      }
      // Unlike "Try it", only the end of a stroke asks: half a digit read as a number is noise.
      if (!final) return;
      if (!pad.digitSized) {
        status.textContent = "Keep writing: that is too small to be a digit.";
        return;
      }
      submit({ image: pad.toBlob(), source: "drawing" });
    },
  });

  function read(request) {
    view.busy(true);
    status.textContent = "Reading…";
    const started = performance.now();
    return readNumber(request.image)
      .then((reading) => {
        if (queue.pending) return; // a newer drawing or upload is waiting: this answer is stale
        if (request.source === "drawing" && pad.empty) return; // cleared meanwhile
        view.show(reading, request.image);
        const ms = performance.now() - started;
        status.textContent = `Read ${reading.digits.length} digit(s) with ${reading.model} in ${ms.toFixed(0)} ms (round trip).`;
      })
      .catch((error) => {
        if (queue.pending) return;
        view.reset();
        status.textContent = error.message;
      });
  }

  undo.addEventListener("click", () => pad.undo());
  clear.addEventListener("click", () => pad.clear());
  onUpload([$("read-file"), $("read-photo")], pad, [undo, clear], (file) => submit({ image: file, source: "upload" }));
}

/** The string, its confidence, the image with one box per digit, and the same as a list. */
class ReadingView {
  constructor() {
    const $ = (id) => document.getElementById(id);
    this.text = $("read-text");
    this.confidence = $("read-confidence");
    this.figure = $("read-figure");
    this.image = $("read-image");
    this.boxes = $("read-boxes");
    this.list = $("read-digits");
    this.objectUrl = null;
    this.busy(false);
  }

  busy(on) {
    // aria-busy false: the answer for the latest drawing or upload is on the page (tests wait on it).
    this.list.setAttribute("aria-busy", String(on));
  }

  reset() {
    this.text.textContent = "–";
    this.confidence.textContent = "";
    this.figure.hidden = true;
    this.boxes.replaceChildren();
    this.boxes.setAttribute("aria-label", "No digits found yet");
    this.list.replaceChildren();
  }

  show(reading, image) {
    this.text.textContent = reading.text;
    const lines = reading.other_digits ? ` ${reading.other_digits} digit-sized mark(s) off this line were not read.` : "";
    this.confidence.textContent = `${percent(reading.confidence)} sure of the whole number (every digit right).${lines}`;
    // Boxes in percent of the image the service decoded (after EXIF rotation, as the browser
    // draws it), so they stay on their digits at any displayed size.
    const { width, height } = reading.image;
    const described = [];
    const grouped = new Set(reading.digits.map((d) => d.group)).size > 1;
    const boxes = reading.digits.map((d, i) => {
      const [x, y, w, hgt] = d.box;
      const box = h("div", { class: "digit-box", "data-digit": d.digit },
        h("span", { class: "digit-box-label", text: `${d.digit} · ${percent(d.confidence, 0)}` }));
      box.style.left = `${(100 * x) / width}%`;
      box.style.top = `${(100 * y) / height}%`;
      box.style.width = `${(100 * w) / width}%`;
      box.style.height = `${(100 * hgt) / height}%`;
      described.push(`${d.digit} (${percent(d.confidence, 0)})`);
      return { box, item: digitItem(d, i, grouped) };
    });
    this.boxes.replaceChildren(...boxes.map((b) => b.box));
    this.boxes.setAttribute("aria-label", `Your image with ${boxes.length} digit box(es): ${described.join(", ")}`);
    this.list.replaceChildren(...boxes.map((b) => b.item));
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = URL.createObjectURL(image);
    this.image.src = this.objectUrl;
    this.figure.hidden = false;
  }
}

function digitItem(d, i, grouped) {
  const [x, y, w, hgt] = d.box;
  return h("li", { class: "read-digit" },
    h("span", { class: "digit", text: d.digit }),
    h("span", { class: "answer-side" },
      h("span", { class: "confidence", text: percent(d.confidence) }),
      // A pair: two touching digits read at once by the front end's pair reader, not cut apart.
      h("span", { text: `digit ${i + 1}${grouped ? `, group ${d.group + 1}` : ""}${d.paired ? ", read with its touching neighbour" : ""}` }),
      h("span", { text: `x ${x}, y ${y}, ${w}×${hgt} px` })));
}
