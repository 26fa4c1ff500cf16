// "Try it": send the drawing or an uploaded image to POST /models/compare and show every ready
// model's answer side by side, with what the models saw.

import { compareImage } from "./api.js";
import { h, percent } from "./dom.js";
import { LatestWins } from "./latest.js";
import { Pad, onUpload } from "./pad.js";

// While a stroke is being drawn, ask at most this often; the end of a stroke asks at once.
const DRAW_DEBOUNCE_MS = 150;

export function setUpTry(models) {
  const $ = (id) => document.getElementById(id);
  const status = $("status");
  const answers = $("answers");
  const agreement = $("agreement");
  const undo = $("undo");
  const clear = $("clear");
  const cards = new AnswerCards(answers, models);
  const seen = new SeenPanel();

  // Requests: {image, source, strokeEnd}. A drawing that waits keeps the earliest unsent stroke
  // end, so the measure covers the user's whole wait.
  const queue = new LatestWins(ask, {
    merge: (pending, next) => ({ ...next, strokeEnd: pending.strokeEnd ?? next.strokeEnd }),
    onIdle: () => updateBusy(),
  });
  let timer = null;
  let strokeEnd = null; // performance.now() of the last stroke end not yet sent
  let waiting = 0; // drawings between a change and their request (debounce, PNG encoding)

  // aria-busy: the answers are about to change; false once the latest drawing's answers are shown.
  const updateBusy = () => answers.setAttribute("aria-busy", String(Boolean(queue.inFlight || queue.pending || waiting)));

  const pad = new Pad($("pad"), {
    onChange(final) {
      undo.disabled = clear.disabled = pad.empty;
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
        waiting -= 1;
      }
      if (pad.empty) {
        queue.drop();
        updateBusy();
        cards.reset();
        seen.hide();
        agreement.textContent = "";
        status.textContent = "Draw a digit to see every model's answer.";
        return;
      }
      if (!pad.digitSized) {
        if (final) strokeEnd = null;
        status.textContent = "Keep drawing: that is too small to be a digit.";
        return updateBusy();
      }
      waiting += 1;
      updateBusy();
      if (final) {
        strokeEnd = performance.now();
        submitDrawing();
      } else {
        timer = setTimeout(() => {
          timer = null;
          submitDrawing();
        }, DRAW_DEBOUNCE_MS);
      }
    },
  });

  function submitDrawing() {
    const image = pad.toBlob();
    const request = { image, source: "drawing", strokeEnd };
    strokeEnd = null;
    waiting -= 1;
    if (pad.empty) return updateBusy();
    submit(request);
  }

  function submit(request) {
    queue.submit(request);
    updateBusy();
  }

  function ask(request) {
    updateBusy();
    status.textContent = "Asking every model…";
    const started = performance.now();
    request.sent = started;
    return compareImage(request.image)
      .then((comparison) => {
        request.parsed = performance.now();
        const pending = queue.pending;
        if (pending && request.source === "drawing" && pending.source === "drawing") return; // stale
        if (request.source === "drawing" && pad.empty) return; // cleared meanwhile
        show(comparison, request, performance.now() - started);
      })
      .catch((error) => {
        cards.reset();
        seen.hide();
        agreement.textContent = "";
        status.textContent = error.message;
      });
  }

  function show(comparison, request, roundTripMs) {
    const { suited, apart, digit, votes } = vote(comparison.predictions, models);
    cards.show(comparison, digit, new Set(apart.map((p) => p.model)));
    const count = suited.length;
    const agreeing = votes.get(digit).length;
    const unanimous = agreeing === count;
    const says = (names, d) => `${names.join(", ")} ${names.length > 1 ? "say" : "says"} ${d}`;
    agreement.textContent = (unanimous
      ? `All ${count} models say ${digit}.`
      : `${agreeing} of ${count} models say ${digit}; ` +
        [...votes].filter(([d]) => d !== digit).map(([d, names]) => says(names, d)).join("; ") + ".") +
      // Models whose input the image does not suit answer too, but do not vote (an 8x8 model reads a
      // drawing 55-60% right): shown apart, with their answers.
      (apart.length ? ` Not counted, their input unlike this image: ${apart.map((p) => says([p.model], p.digit)).join("; ")}.` : "");
    agreement.classList.toggle("split", !unanimous);
    const missing = comparison.unavailable.length ? ` ${comparison.unavailable.length} model(s) not ready.` : "";
    status.textContent = `Answered in ${roundTripMs.toFixed(0)} ms (round trip).${missing}`;
    seen.show(comparison.predictions[0].image, request);
    requestAnimationFrame(() => {
      // The frame that shows the answers: the page's stroke-to-answers time (bench/page.py reads it).
      if (request.strokeEnd !== null && request.strokeEnd !== undefined) {
        const shown = performance.now();
        performance.measure("stroke-to-answers", { start: request.strokeEnd, end: shown });
        // Where the time went: encoding the PNG (and waiting for a request in flight), the request
        // until its JSON is parsed, and drawing the answers until the frame that shows them.
        performance.measure("stroke-encode-and-wait", { start: request.strokeEnd, end: request.sent });
        performance.measure("stroke-request", { start: request.sent, end: request.parsed });
        performance.measure("stroke-render", { start: request.parsed, end: shown });
      }
      document.body.dataset.answered = String(Number(document.body.dataset.answered || 0) + 1);
    });
  }

  undo.addEventListener("click", () => pad.undo());
  clear.addEventListener("click", () => pad.clear());
  $("pen-width").addEventListener("input", (event) => {
    pad.width = Number(event.target.value);
  });
  onUpload([$("file"), $("photo")], pad, [undo, clear], (file) => {
    queue.drop(); // a drawing still waiting is no longer what the user wants answered
    submit({ image: file, source: "upload", strokeEnd: null });
  });

  updateBusy();
  status.textContent = models.some((m) => m.state === "ready")
    ? "Draw a digit to see every model's answer."
    : "No model is ready to answer.";
}

// The test sets the models are ranked on: an accuracy is comparable only within one (README, "Results").
const TEST_SETS = [
  { encoding: "mnist", title: "MNIST models: test accuracy on MNIST's 10,000 test digits" },
  { encoding: "uci-8x8", title: "UCI 8x8 models: test accuracy on 360 UCI 8x8 test digits (they read 8x8 block counts)" },
];

const encodingOf = (model) => model?.input?.encoding ?? "mnist";

/**
 * The vote among the models whose input the image suits: the 8x8 models for an 8x8 UCI digit (the
 * service passed it through as it is), the MNIST-style ones otherwise; the others apart. Majority:
 * most votes, then the digit the most accurate of its voters said (the comparison's order).
 */
export function vote(predictions, models) {
  const byName = new Map(models.map((m) => [m.name, m]));
  const uciImage = predictions.some((p) => p.image?.method === "uci-passthrough");
  const suits = (p) => (encodingOf(byName.get(p.model)) === "uci-8x8") === uciImage;
  let suited = predictions.filter(suits);
  if (!suited.length) suited = predictions; // no model suits it: every answer votes, as before
  const apart = predictions.filter((p) => !suited.includes(p));
  const votes = new Map();
  for (const p of suited) votes.set(p.digit, [...(votes.get(p.digit) ?? []), p.model]);
  const digit = [...votes].sort((a, b) => b[1].length - a[1].length)[0][0];
  return { suited, apart, digit, votes };
}

/** One card per model, kept in place between answers so that the page does not jump as you draw. */
class AnswerCards {
  constructor(list, models) {
    this.list = list;
    this.cards = new Map();
    // Grouped by test set, best first within each (no accuracy ranks across two test sets); the
    // default for uploads is marked.
    const ready = models.filter((m) => m.state === "ready");
    ready.sort((a, b) => (b.test_accuracy ?? 0) - (a.test_accuracy ?? 0) || a.name.localeCompare(b.name));
    for (const { encoding, title } of TEST_SETS) {
      const members = ready.filter((m) => encodingOf(m) === encoding);
      if (!members.length) continue;
      list.append(h("li", { class: "answer-group" }, h("h2", { text: title })));
      for (const model of members) {
        const card = answerCard(model);
        this.cards.set(model.name, card);
        list.append(card.element);
      }
    }
  }

  reset() {
    for (const card of this.cards.values()) card.clear();
  }

  show(comparison, majority, apart) {
    for (const prediction of comparison.predictions) {
      let card = this.cards.get(prediction.model);
      if (!card) {
        // A model that became ready after the page loaded (the store was reloaded).
        card = answerCard({ name: prediction.model, architecture: null, test_accuracy: null, default_for_uploads: false });
        this.cards.set(prediction.model, card);
        this.list.append(card.element);
      }
      card.fill(prediction, apart.has(prediction.model) ? null : majority);
    }
  }
}

function answerCard(model) {
  const digit = h("span", { class: "digit", text: "–" });
  const confidence = h("span", { class: "confidence", text: "" });
  const latency = h("span", { class: "latency", text: "" });
  const bars = [];
  const barList = h("ol", { class: "bars", "aria-label": `${model.name}: probability of each digit` });
  for (let d = 0; d < 10; d++) {
    const fill = h("span", { class: "fill" });
    const value = h("span", { class: "value", text: "" });
    const row = h("li", {}, h("span", { class: "label", text: d }), h("span", { class: "track" }, fill), value);
    bars.push({ row, fill, value });
    barList.append(row);
  }
  const facts = [model.architecture?.toUpperCase(), model.test_accuracy ? `test ${percent(model.test_accuracy, 2)}` : null]
    .filter(Boolean).join(" · ");
  const element = h(
    "li",
    { class: "answer", "data-model": model.name },
    h("div", { class: "answer-head" },
      h("span", { class: "name" }, breakable(model.name)),
      model.default_for_uploads ? h("span", { class: "badge", title: "Uploads without ?model= get this model's answer", text: "default" }) : null),
    h("div", { class: "answer-main" }, digit, h("span", { class: "answer-side" }, confidence, latency)),
    barList,
    facts ? h("p", { class: "answer-facts", text: facts }) : null,
  );
  return {
    element,
    clear() {
      element.classList.remove("has-answer", "dissent");
      digit.textContent = "–";
      confidence.textContent = latency.textContent = "";
      for (const bar of bars) {
        bar.fill.style.width = "0%";
        bar.value.textContent = "";
        bar.row.classList.remove("best");
      }
    },
    fill(prediction, majority) {
      // majority null: a model whose input the image does not suit (it did not vote).
      element.classList.add("has-answer");
      element.classList.toggle("dissent", majority !== null && prediction.digit !== majority);
      element.classList.toggle("apart", majority === null);
      digit.textContent = String(prediction.digit);
      confidence.textContent = percent(prediction.confidence);
      latency.textContent = `${prediction.timings.inference_ms.toFixed(2)} ms`;
      latency.title = "Inference time on the server";
      prediction.probabilities.forEach((p, d) => {
        bars[d].fill.style.width = `${(p * 100).toFixed(1)}%`;
        bars[d].value.textContent = p >= 0.005 ? percent(p, 0) : "";
        bars[d].row.classList.toggle("best", d === prediction.digit);
      });
      element.setAttribute("aria-label", `${prediction.model} says ${prediction.digit}, ${percent(prediction.confidence)} sure`);
    },
  };
}

/** The 28x28 image the models saw and the box where the digit was found in the original. */
class SeenPanel {
  constructor() {
    this.panel = document.getElementById("seen");
    this.prepared = document.getElementById("prepared");
    this.original = document.getElementById("original");
    this.facts = document.getElementById("seen-facts");
    this.objectUrl = null;
  }

  hide() {
    this.panel.hidden = true;
  }

  show(report, request) {
    if (!report) return this.hide();
    this.panel.hidden = false;
    if (report.prepared_png) this.prepared.src = `data:image/png;base64,${report.prepared_png}`;
    const [x, y, w, hgt] = report.box;
    this.facts.replaceChildren(
      ...fact("Read as", `${report.format}, ${report.width}×${report.height}${report.inverted ? ", inverted (dark ink)" : ""}`),
      ...fact("Digit box", `x ${x}, y ${y}, ${w}×${hgt} px`),
      ...(report.other_digits ? fact("Other ink", `${report.other_digits} other group(s) ignored`) : []),
      ...(report.lines_removed ? fact("Lines removed", String(report.lines_removed)) : []),
    );
    // Draw the original with its box. The service reports the box after EXIF rotation; the browser
    // draws images EXIF-rotated too (image-orientation: from-image), so the two agree.
    if (this.objectUrl) URL.revokeObjectURL(this.objectUrl);
    this.objectUrl = URL.createObjectURL(request.image);
    const image = new Image();
    image.addEventListener("load", () => this.drawOriginal(image, report));
    image.addEventListener("error", () => {
      this.original.getContext("2d").clearRect(0, 0, this.original.width, this.original.height);
    });
    image.src = this.objectUrl;
  }

  drawOriginal(image, report) {
    const canvas = this.original;
    const c = canvas.getContext("2d");
    const scale = Math.min(canvas.width / image.naturalWidth, canvas.height / image.naturalHeight);
    const w = image.naturalWidth * scale;
    const hgt = image.naturalHeight * scale;
    const left = (canvas.width - w) / 2;
    const top = (canvas.height - hgt) / 2;
    c.fillStyle = "#e8ecf0";
    c.fillRect(0, 0, canvas.width, canvas.height);
    c.drawImage(image, left, top, w, hgt);
    const sx = w / report.width;
    const sy = hgt / report.height;
    const [x, y, bw, bh] = report.box;
    c.strokeStyle = "#e8590c";
    c.lineWidth = 3;
    c.strokeRect(left + x * sx, top + y * sy, Math.max(bw * sx, 2), Math.max(bh * sy, 2));
  }
}

/** A model name that may wrap after its underscores (cnn_<wbr>augmented), not inside a word. */
function breakable(name) {
  const parts = name.split("_");
  return parts.flatMap((part, i) => (i < parts.length - 1 ? [`${part}_`, h("wbr")] : [part]));
}

function fact(term, description) {
  return [h("dt", { text: term }), h("dd", { text: description })];
}
