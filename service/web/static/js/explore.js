// "Explore": one view per experiment of the zoo, rendered from the cards (GET /models/{name}) and
// the comparison (GET /models/compare). Sections the cards or the comparison gain later (the
// honest-comparison results: significance, seed spread, calibration, robustness) are rendered from
// whatever they hold, under their own names.

import { getJSON, listModels } from "./api.js";
import { confusionMatrix, lineChart, PALETTE } from "./charts.js";
import { h, percent, scrollBox } from "./dom.js";

// The card fields this view draws itself; any other field gets a generic section.
const CARD_FIELDS = new Set([
  "schema_version", "name", "version", "experiment", "architecture", "framework", "input", "description", "hyperparameters", "parameter_count", "seed",
  "history", "training_seconds", "test_accuracy", "test_loss", "test_errors", "per_class", "macro_avg",
  "confusion_matrix", "misclassified", "onnx", "dataset", "library_versions", "created_at",
]);
const COMPARISON_FIELDS = new Set([
  "best", "models", "cnn_vs_mlp", "regularisation_effects", "per_class_f1", "findings", "unavailable",
  "tied_for_best", "significance", "experiments", "datasets", "zoo_note",
]);
const MISTAKES_SHOWN = 48;
const THUMB = 56; // px: a 28x28 digit at twice its size

let loaded = null;

/** Fetch everything once (the cards are ~40 KB each), then show the experiment named in the hash. */
export async function showExplore(experimentId) {
  const panel = document.getElementById("experiment");
  if (!loaded) {
    panel.replaceChildren(h("p", { class: "status", text: "Loading the cards…" }));
    loaded = load().catch((error) => {
      loaded = null;
      throw error;
    });
  }
  let data;
  try {
    data = await loaded;
  } catch (error) {
    panel.replaceChildren(h("p", { class: "status", text: `Could not load the experiments: ${error.message}` }));
    return;
  }
  const experiment = data.experiments.find((e) => e.id === experimentId) || data.experiments[0];
  renderTabs(data.experiments, experiment);
  panel.setAttribute("aria-labelledby", `tab-${experiment.id}`);
  panel.replaceChildren(...renderExperiment(experiment, data));
}

async function load() {
  const [list, comparison, sprite] = await Promise.all([
    listModels(),
    getJSON("/models/compare"),
    getJSON("/static/mistakes.json").catch(() => null),
  ]);
  const details = await Promise.all(list.models.map((m) => getJSON(`/models/${encodeURIComponent(m.name)}`)));
  const cards = details.filter((d) => d.card).map((d) => d.card);
  for (const card of cards) KNOWN_MODELS.add(card.name);
  const colors = new Map(cards.map((card, i) => [card.name, PALETTE[i % PALETTE.length]]));
  const spriteIndex = sprite ? new Map(sprite.indices.map((index, position) => [index, position])) : new Map();
  const experiments = groupExperiments(cards, comparison.experiments ?? []);
  const extras = Object.keys(comparison).filter((key) => !COMPARISON_FIELDS.has(key));
  return { cards, comparison, colors, sprite, spriteIndex, experiments, extras };
}

/**
 * One tab per experiment: the cards' `experiment`, in the order and with the titles of the
 * comparison's experiment sections (GET /models/compare `experiments`). A card without one (an
 * older store) is grouped with the cards trained the same way (epochs, batch, optimizer, images).
 */
function groupExperiments(cards, sections) {
  const groups = new Map();
  for (const card of cards) {
    const hp = card.hyperparameters ?? {};
    const key = card.experiment ?? `${hp.augmentation ?? "clean"}-${hp.epochs}-${hp.batch_size}-${hp.optimizer}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key).push(card);
  }
  const order = new Map(sections.map((section, i) => [section.id, i]));
  const keys = [...groups.keys()].sort((a, b) => (order.get(a) ?? Infinity) - (order.get(b) ?? Infinity));
  return keys.map((key, i) => {
    const members = groups.get(key);
    const section = sections.find((one) => one.id === key) ?? null;
    // An imported model (`store add`) has no hyperparameters: its training is not known.
    const hp = members[0].hyperparameters;
    const protocol = section?.protocol ?? (!hp ? "not known: imported ONNX files, evaluated here on the test set only" : `${hp.epochs} epochs, batch ${hp.batch_size}, ${hp.optimizer}` +
      (hp.augmentation ? `, "${hp.augmentation}" augmentation` : ""));
    const title = section?.title ?? (typeof members[0].experiment === "string" ? members[0].experiment
      : hp?.augmentation ? `Augmentation: ${hp.augmentation}` : `${members[0].architecture.toUpperCase()} variants`);
    // The experiment's own ranking (ties within noise share a rank); by accuracy without one.
    const ranked = section ? section.models.map((row) => row.name) : [];
    const position = (card) => (ranked.includes(card.name) ? ranked.indexOf(card.name) : ranked.length);
    members.sort((a, b) => position(a) - position(b) || b.test_accuracy - a.test_accuracy);
    return { id: slug(key) || `experiment-${i}`, title, protocol, members, section };
  });
}

function slug(text) {
  return String(text).toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "");
}

function renderTabs(experiments, current) {
  const tabs = document.getElementById("experiment-tabs");
  tabs.replaceChildren(...experiments.map((e) => {
    const tab = h("a", {
      href: `#explore/${e.id}`, role: "tab", id: `tab-${e.id}`, class: "tab",
      "aria-selected": String(e === current), "aria-controls": "experiment",
      text: `${e.title} (${e.members.length})`,
    });
    return tab;
  }));
}

function renderExperiment(experiment, data) {
  const { members } = experiment;
  const names = new Set(members.map((c) => c.name));
  const { section } = experiment;
  // The experiment's own rows (ranked among its models); the zoo's where the comparison has no section.
  const rows = section ? section.models : data.comparison.models.filter((row) => names.has(row.name));
  // Validation figures per epoch; a model that recorded none (scikit-learn without early stopping)
  // is drawn with its training figures, and says so.
  const series = (validation, training) => members.map((card) => {
    const measured = card.history.some((e) => validation(e) != null);
    const pick = measured ? validation : training;
    return {
      name: measured || !card.history.some((e) => training(e) != null) ? card.name : `${card.name} (training)`,
      color: data.colors.get(card.name),
      points: card.history.filter((e) => pick(e) != null).map((e) => [e.epoch, pick(e)]),
    };
  });
  const out = [
    h("h2", { text: experiment.title }),
    h("p", { class: "protocol", text: `Trained the same way: ${experiment.protocol}. ` +
      members.map((c) => `${c.name}: ${c.description}`).join("; ") + "." }),
  ];
  if (section?.question) out.push(h("p", { class: "question", text: `The question: ${section.question}` }));
  out.push(summaryTable(members, rows));

  out.push(h("section", { class: "curves" }, h("h3", { text: "Learning curves" }),
    h("div", { class: "chart-pair" },
      lineChart({ title: "Validation accuracy by epoch", series: series((e) => e.val_accuracy, (e) => e.accuracy), format: (y) => percent(y, 1), yFrom: 2, xLabel: "epoch" }),
      lineChart({ title: "Validation loss by epoch", series: series((e) => e.val_loss, (e) => e.loss), format: (y) => y.toFixed(2), xLabel: "epoch" }))));

  out.push(modelDetails(members, data));
  // The experiment's findings, then the zoo's that name one of its models (seed spread, calibration, ...),
  // leaving out the zoo's own rankings: this tab ranks its models among themselves.
  const own = section?.findings ?? [];
  const zoo = data.comparison.findings.filter((text) => !own.includes(text) && !/ has the highest test accuracy\b/.test(text) &&
    [...names].some((n) => new RegExp(`\\b${n}\\b`).test(text)));
  const findings = [...own, ...zoo];
  if (findings.length) out.push(h("section", { class: "findings" }, h("h3", { text: "Findings" }), h("ul", {}, findings.map((f) => h("li", { text: f })))));
  if (section?.significance.length) out.push(pairTable(section.significance));
  if (section) out.push(...recordSection(section));
  out.push(...zooSection(data.comparison, names));
  const deltas = [...data.comparison.cnn_vs_mlp, ...data.comparison.regularisation_effects]
    .filter((d) => names.has(d.model) && names.has(d.baseline));
  if (deltas.length) out.push(deltaTable(deltas));

  out.push(...comparisonExtras(data, names));
  out.push(...cardExtras(members, data));
  return out;
}

function summaryTable(members, rows) {
  const byName = new Map(rows.map((r) => [r.name, r]));
  const head = ["model", "rank", "test accuracy (95% CI)", "errors", "test loss", "macro F1", "parameters", "latency p50", "training"];
  const sets = [...new Set(members.map((c) => `${c.dataset.test_samples.toLocaleString("en")} ${datasetName(c.dataset.name)} test images`))];
  return scrollBox("Test figures of each model", h("table", { class: "summary" },
    h("caption", { text: `On the ${sets.join(" / ")}, as exported ONNX files; rank: models whose difference is not significant (McNemar, Holm) share one; latency p50: per image (each request's inference time divided by its images) of real requests on this server, or the warm-up's single images (its best case) before any request` }),
    h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, members.map((card) => {
      const row = byName.get(card.name);
      const interval = row?.test_accuracy_low != null ? ` (${percent(row.test_accuracy_low, 2)}–${percent(row.test_accuracy_high, 2)})` : "";
      return h("tr", {},
        h("th", { scope: "row", text: card.name }),
        h("td", { text: row?.rank ?? "–" }),
        h("td", { text: percent(card.test_accuracy, 2) + interval }),
        h("td", { text: card.test_errors }),
        h("td", { text: card.test_loss.toFixed(4) }),
        h("td", { text: card.macro_avg.f1.toFixed(4) }),
        h("td", { text: card.parameter_count.toLocaleString("en") }),
        h("td", { text: latencyText(row) }),
        h("td", { text: card.training_seconds == null ? "not known" : `${(card.training_seconds / 60).toFixed(1)} min` }));
    }))));
}

/** McNemar tests of pairs of models on the same test images (the experiment's own question). */
function pairTable(tests) {
  const p = (v) => (v < 0.001 ? v.toExponential(1) : v.toFixed(3));
  const head = ["comparison", "only the model right", "only the baseline right", "McNemar p", "Holm p", "verdict"];
  return h("section", { class: "pairs" }, h("h3", { text: "Is the difference real?" }), scrollBox("Paired tests on the test set",
    h("table", { class: "summary" },
      h("caption", { text: "Exact McNemar tests on the test images exactly one of the two models got right, Holm-adjusted over the tests listed" }),
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, tests.map((t) => h("tr", {},
        h("th", { scope: "row", text: `${t.question}: ${t.model} vs ${t.baseline}` }),
        h("td", { class: "num", text: t.only_model_right }), h("td", { class: "num", text: t.only_baseline_right }),
        h("td", { class: "num", text: p(t.p_value) }), h("td", { class: "num", text: p(t.p_holm) }),
        h("td", { text: t.significant ? `significant: ${t.better} better` : "not significant" })))))));
}

/** What the experiment's record holds beyond the models: the seed's figures, a search, studies, notes. */
function recordSection(section) {
  const facts = [];
  if (section.seed_document) facts.push(["seed document", section.seed_document]);
  if (section.split) facts.push(["split", section.split]);
  if (section.seed_claims.length) facts.push(["the seed reports", section.seed_claims.join("; ")]);
  if (section.trials) facts.push(["search trials", String(section.trials)]);
  if (section.studies.length) facts.push(["sensitivity studies", section.studies.join("; ")]);
  if (section.notes.length) facts.push(["notes", section.notes.join(" ")]);
  if (!facts.length) return [];
  return [h("section", { class: "record", "data-section": "record" }, h("h3", { text: "The experiment" }),
    h("dl", { class: "facts" }, facts.flatMap(([k, v]) => [h("dt", { text: k }), h("dd", { text: v })])))];
}

/** The zoo on this experiment's test set: the best of each family, and why other test sets are not compared. */
function zooSection(comparison, names) {
  const sets = (comparison.datasets ?? []).filter((d) => d.models.some((m) => names.has(m)));
  if (!sets.length) return [];
  const head = ["family", "best model", "experiment", "framework", "test accuracy (95% CI)", "errors", "parameters", "latency p50", "tied within the family"];
  return [h("section", { class: "zoo", "data-section": "zoo" }, h("h3", { text: "Across the zoo" }),
    h("p", { class: "protocol", text: comparison.zoo_note }),
    ...sets.map((d) => scrollBox(`Best per family on ${datasetName(d.dataset)}`, h("table", { class: "summary" },
      h("caption", { text: `Best per family on the ${d.test_samples.toLocaleString("en")} ${datasetName(d.dataset)} test images (${d.models.length} models)` +
        (d.family_gap ? `; best CNN vs best MLP: ${d.family_gap.significant ? `significant, ${d.family_gap.better} better` : "not significant"} (McNemar p = ${d.family_gap.p_value.toPrecision(2)})` : "") }),
      h("thead", {}, h("tr", {}, head.map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, d.families.map((f) => h("tr", {},
        h("th", { scope: "row", text: f.family.toUpperCase() }), h("td", { text: f.model }), h("td", { text: f.experiment }),
        h("td", { text: f.framework }),
        h("td", { text: `${percent(f.test_accuracy, 2)} (${percent(f.test_accuracy_low, 2)}–${percent(f.test_accuracy_high, 2)})` }),
        h("td", { class: "num", text: f.test_errors }), h("td", { class: "num", text: f.parameter_count.toLocaleString("en") }),
        h("td", { text: latencyText(f) }),
        h("td", { text: f.tied_in_family.filter((m) => m !== f.model).join(", ") || "none" })))))))),
  ];
}

const datasetName = (name) => (name === "mnist" ? "MNIST" : name);

function deltaTable(deltas) {
  const signed = (v, digits) => `${v > 0 ? "+" : ""}${v.toFixed(digits)}`;
  return h("section", {}, h("h3", { text: "What changing one thing did" }), scrollBox("What changing one thing did",
    h("table", { class: "summary" },
      h("thead", {}, h("tr", {}, ["model", "against", "accuracy", "errors", "test loss", "macro F1"].map((t) => h("th", { scope: "col", text: t })))),
      h("tbody", {}, deltas.map((d) => h("tr", {},
        h("th", { scope: "row", text: d.model }), h("td", { text: d.baseline }),
        h("td", { text: `${signed(d.test_accuracy_delta * 100, 2)} pt` }), h("td", { text: signed(d.test_errors_delta, 0) }),
        h("td", { text: signed(d.test_loss_delta, 4) }), h("td", { text: signed(d.macro_f1_delta, 4) })))))));
}

/** One model at a time: its confusion matrix and its misclassified test digits. */
function modelDetails(members, data) {
  const section = h("section", { class: "model-details" }, h("h3", { text: "Each model's mistakes" }));
  const body = h("div", { class: "model-body" });
  const picker = h("div", { class: "picker", role: "group", "aria-label": "Model" });
  const choose = (card) => {
    for (const button of picker.children) button.setAttribute("aria-pressed", String(button.dataset.model === card.name));
    body.replaceChildren(
      confusionMatrix(card.confusion_matrix, `${card.name}: confusion matrix (rows: true digit, columns: predicted)`),
      mistakes(card, data),
    );
  };
  for (const card of members) {
    const swatch = h("span", { class: "swatch" });
    swatch.style.backgroundColor = data.colors.get(card.name);
    picker.append(h("button", { type: "button", "data-model": card.name, onclick: () => choose(card) }, swatch, card.name));
  }
  section.append(picker, body);
  choose(members[0]);
  return section;
}

function mistakes(card, data) {
  // The most confident mistakes first: the ones a user would least expect.
  const wrong = [...card.misclassified].sort((a, b) => b.confidence - a.confidence);
  const grid = h("ol", { class: "mistakes", "aria-label": `${card.name}: misclassified test digits` });
  const more = h("button", { type: "button", class: "more" });
  let shown = 0;
  // The sprite holds MNIST test digits: another test set's indices name other images, so they get labelled tiles.
  const mnist = card.dataset?.name === undefined || card.dataset.name === "mnist";
  const showMore = (count) => {
    for (const m of wrong.slice(shown, shown + count)) grid.append(thumbnail(m, data, mnist));
    shown = Math.min(wrong.length, shown + count);
    more.hidden = shown >= wrong.length;
    more.textContent = `Show all ${wrong.length}`;
  };
  more.addEventListener("click", () => showMore(wrong.length));
  showMore(MISTAKES_SHOWN);
  return h("figure", { class: "mistakes-figure" },
    h("figcaption", { text: `${card.name}: ${wrong.length} misclassified test digits, most confident first (true → predicted, confidence)` }),
    grid, more);
}

function thumbnail(m, data, mnist) {
  const position = mnist ? data.spriteIndex.get(m.index) : undefined;
  const tile = h("span", { class: "thumb", role: "img", "aria-label": `test digit ${m.index}, a ${m.label} read as ${m.predicted}` });
  if (position === undefined || !data.sprite) {
    tile.classList.add("missing");
    tile.textContent = `#${m.index}`;
  } else {
    const { columns } = data.sprite;
    tile.style.backgroundSize = `${columns * THUMB}px auto`;
    tile.style.backgroundPosition = `-${(position % columns) * THUMB}px -${Math.floor(position / columns) * THUMB}px`;
  }
  return h("li", { title: `test image ${m.index}` }, tile,
    h("span", { class: "thumb-label" }, h("strong", { text: `${m.label}→${m.predicted}` }), ` ${percent(m.confidence, 0)}`));
}

/** Card fields this page does not know (issue 12's results): one section each, every model that has it. */
function cardExtras(members, data) {
  const keys = [...new Set(members.flatMap((c) => Object.keys(c).filter((k) => !CARD_FIELDS.has(k))))];
  return keys.map((key) => {
    const holders = members.filter((c) => c[key] !== undefined && c[key] !== null);
    const flat = (v) => v && typeof v === "object" && !Array.isArray(v) && Object.values(v).every((x) => x === null || typeof x !== "object");
    // Flat records (one per model, the same fields): one table, a row per model.
    const body = holders.every((c) => flat(c[key]))
      ? renderValue(holders.map((c) => ({ model: c.name, ...c[key] })), 0, data)
      : holders.map((c) => h("div", { class: "extra-model" }, h("h4", { text: c.name }), renderValue(c[key], 0, data)));
    return h("section", { class: "extra", "data-section": key }, h("h3", { text: `${title(key)} (from the cards)` }), body);
  });
}

/**
 * Sections of GET /models/compare this page does not know by name (significance, seed spread,
 * calibration, robustness, ...), each cut down to the rows about this experiment's models.
 */
function comparisonExtras(data, names) {
  return data.extras.flatMap((key) => {
    const value = relevantTo(data.comparison[key], names);
    if (value === null) return [];
    return [h("section", { class: "extra", "data-section": key }, h("h3", { text: title(key) }), renderValue(value, 0, data))];
  });
}

const MODEL_FIELDS = ["name", "variant", "model", "baseline"];

/** The part of a value about `names`: rows that name one of them, per-model maps keyed by them. */
function relevantTo(value, names) {
  if (Array.isArray(value)) {
    if (value.every((v) => typeof v === "string")) {
      const kept = value.filter((v) => !allModelNames(value) || names.has(v));
      return kept.length ? kept : null;
    }
    const records = value.filter((v) => v && typeof v === "object" && !Array.isArray(v));
    const tagged = records.some((r) => MODEL_FIELDS.some((f) => typeof r[f] === "string"));
    const kept = value.map((v) => {
      if (!v || typeof v !== "object" || Array.isArray(v)) return v;
      if (tagged && !MODEL_FIELDS.some((f) => names.has(v[f]))) return null;
      return relevantTo(v, names);
    }).filter((v) => v !== null);
    return kept.length ? kept : null;
  }
  if (value && typeof value === "object") {
    const keys = Object.keys(value);
    if (keys.length && keys.some((k) => KNOWN_MODELS.has(k))) {
      const kept = Object.fromEntries(keys.filter((k) => names.has(k)).map((k) => [k, value[k]]));
      return Object.keys(kept).length ? kept : null;
    }
    return Object.fromEntries(keys.map((k) => [k, relevantTo(value[k], names) ?? value[k]]));
  }
  return value;
}

const KNOWN_MODELS = new Set();
const allModelNames = (list) => list.length > 0 && list.every((v) => KNOWN_MODELS.has(v));

function title(key) {
  const words = key.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Any JSON as readable HTML: lists of records as tables, objects as definition lists. */
function renderValue(value, depth, data) {
  if (value === null || value === undefined) return h("span", { text: "–" });
  if (typeof value === "string" && value.length > 120) return h("p", { class: "protocol", text: value });
  if (typeof value === "number") return h("span", { text: formatNumber(value) });
  if (typeof value !== "object") return h("span", { text: String(value) });
  if (depth > 3) return h("code", { text: JSON.stringify(value) });
  if (Array.isArray(value)) {
    if (value.length && value.every((v) => curveOf(v))) {
      return h("div", { class: "chart-pair" }, value.map((v) => curveChart(v, data)));
    }
    if (value.length && value.every((v) => v && typeof v === "object" && !Array.isArray(v))) {
      const columns = [...new Set(value.flatMap(Object.keys))];
      return scrollBox(`Table of ${columns.slice(0, 3).join(", ").replace(/_/g, " ")}`, h("table", { class: "summary generic" },
        h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", text: c.replace(/_/g, " ") })))),
        h("tbody", {}, value.slice(0, 100).map((row) => h("tr", {}, columns.map((c) =>
          h("td", { class: typeof row[c] === "number" ? "num" : null }, renderValue(row[c], depth + 1, data))))))));
    }
    if (value.every((v) => typeof v !== "object" || v === null)) {
      return h("span", { text: value.map((v) => (typeof v === "number" ? formatNumber(v) : String(v))).join(", ") });
    }
    return h("ol", {}, value.map((v) => h("li", {}, renderValue(v, depth + 1, data))));
  }
  return h("dl", { class: "facts" }, Object.entries(value).flatMap(([k, v]) => [
    h("dt", { text: k.replace(/_/g, " ") }), h("dd", {}, renderValue(v, depth + 1, data))]));
}

/**
 * A record that holds curves: one list of numbers (the x values, e.g. corruption strengths) and a
 * map from model names to lists of the same length (e.g. accuracy at each strength).
 */
function curveOf(record) {
  if (!record || typeof record !== "object" || Array.isArray(record)) return null;
  const entries = Object.entries(record);
  const isNumbers = (v) => Array.isArray(v) && v.length > 1 && v.every((n) => typeof n === "number");
  const xs = entries.find(([, v]) => isNumbers(v));
  if (!xs) return null;
  const ys = entries.find(([, v]) => v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length &&
    Object.keys(v).every((k) => KNOWN_MODELS.has(k)) && Object.values(v).every((a) => isNumbers(a) && a.length === xs[1].length));
  if (!ys) return null;
  return { xName: xs[0], xs: xs[1], yName: ys[0], ys: ys[1] };
}

function curveChart(record, data) {
  const curve = curveOf(record);
  const label = Object.values(record).find((v) => typeof v === "string") ?? curve.yName;
  const unit = typeof record.unit === "string" ? record.unit : curve.xName;
  const series = Object.entries(curve.ys).map(([name, ys]) => ({
    name, color: data?.colors.get(name) ?? "#555", points: ys.map((y, i) => [curve.xs[i], y]).sort((a, b) => a[0] - b[0]),
  }));
  const fraction = series.every((one) => one.points.every(([, y]) => y >= 0 && y <= 1));
  return lineChart({
    title: `${title(curve.yName)}: ${label.replace(/_/g, " ")}`, series, xLabel: unit, yFrom: -Infinity,
    format: fraction ? (y) => percent(y, 0) : (y) => formatNumber(y),
  });
}

function formatNumber(v) {
  if (Number.isInteger(v)) return v.toLocaleString("en");
  return Math.abs(v) < 1e-3 ? v.toExponential(2) : v.toPrecision(4);
}


// What requests took on this server; before the first request, the warm-up's best case, said as such.
function latencyText(row) {
  if (row?.latency_p50_ms != null) return `${row.latency_p50_ms.toFixed(3)} ms/image`;
  if (row?.warmup_latency_p50_ms != null) return `${row.warmup_latency_p50_ms.toFixed(2)} ms (warm-up)`;
  return "–";
}
