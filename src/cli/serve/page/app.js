// The page of `ferrograd serve`: every number it shows comes from the
// server (the Rust library); this script only asks, draws and lists.
"use strict";

const COLOURS = ["#e53935", "#1e88e5", "#43a047", "#fb8c00", "#8e24aa", "#00897b", "#6d4c41", "#3949ab"];
const SVG_NS = "http://www.w3.org/2000/svg";

// ---------- small helpers ----------

const $ = (selector) => document.querySelector(selector);

function element(tag, attributes = {}, children = []) {
  const svgTags = ["svg", "g", "polyline", "circle", "line", "text", "rect", "path"];
  const node = svgTags.includes(tag) ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

function showError(message) {
  const box = $("#error");
  box.textContent = message || "";
  box.hidden = !message;
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(path, options);
  const reply = await response.json();
  if (!response.ok) throw new Error(reply.error || `HTTP ${response.status}`);
  return reply;
}

function short(value) {
  if (value === null || value === undefined) return "–";
  if (typeof value !== "number") return String(value);
  if (value === 0 || Number.isInteger(value)) return String(value);
  return value.toPrecision(5);
}

// A hyperparameter control made from the catalog's declaration: a number
// input with the declared bounds, marked invalid outside them.
function hpControl(spec, value, onChange) {
  const input = element("input", { type: "number", step: "any", value: String(value), "data-hp": spec.name });
  if (spec.min !== null) input.min = spec.min;
  if (spec.max !== null) input.max = spec.max;
  const allowed = (x) => Number.isFinite(x)
    && (spec.min === null || (spec.min_exclusive ? x > spec.min : x >= spec.min))
    && (spec.max === null || (spec.max_exclusive ? x < spec.max : x <= spec.max))
    && (!spec.integer || Number.isInteger(x));
  input.addEventListener("input", () => {
    const x = Number(input.value);
    const ok = input.value.trim() !== "" && allowed(x);
    input.classList.toggle("invalid", !ok);
    input.title = ok ? spec.about : `${spec.name} must be ${spec.allowed}`;
    if (ok) onChange(spec.name, x);
  });
  return element("label", { class: "hp", title: `${spec.about} (${spec.allowed})` }, [spec.name, input]);
}

// ---------- shared catalog ----------

const catalog = { functions: [], optimizers: [], byName: {} };

async function loadCatalog() {
  catalog.functions = await api("/api/functions");
  catalog.optimizers = await api("/api/optimizers");
  for (const o of catalog.optimizers) catalog.byName[o.name] = o;
}

function optionList(select, names) {
  select.replaceChildren(...names.map((n) => element("option", { value: n, text: n })));
}

// ---------- optimizer playground ----------

const playground = {
  func: null, start: [0, 0], steps: 200, entries: [], selected: 0,
  result: null, contour: null, step: 0, request: 0, draws: 0, timer: null, playing: null,
};

function functionInfo() {
  return catalog.functions.find((f) => f.name === playground.func);
}

function defaultsOf(name) {
  const hp = {};
  for (const spec of catalog.byName[name].hyperparams) hp[spec.name] = spec.default;
  if ("lr" in hp) hp.lr = functionInfo().suggested_lr;
  return hp;
}

function addOptimizer(name) {
  playground.entries.push({ name, hp: defaultsOf(name) });
  renderCards();
  recompute();
}

function renderCards() {
  const cards = playground.entries.map((entry, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const remove = element("button", { text: "×", title: "remove" });
    remove.addEventListener("click", (event) => {
      event.stopPropagation();
      playground.entries.splice(index, 1);
      playground.selected = 0;
      renderCards();
      recompute();
    });
    const controls = catalog.byName[entry.name].hyperparams.map((spec) =>
      hpControl(spec, entry.hp[spec.name], (key, x) => { entry.hp[key] = x; recompute(); }));
    const card = element("div", {
      class: "card" + (index === playground.selected ? " selected" : ""),
      style: `--colour: ${colour}`, "data-index": index, "data-optimizer": entry.name,
    }, [element("div", { class: "head" }, [entry.name, remove]), ...controls]);
    card.addEventListener("click", () => { playground.selected = index; renderCards(); renderPanel(); });
    return card;
  });
  $("#pg-optimizers").replaceChildren(...cards);
}

function recompute() {
  clearTimeout(playground.timer);
  playground.timer = setTimeout(fetchPaths, 60);
}

async function fetchPaths() {
  if (playground.entries.length === 0) return;
  const ticket = ++playground.request;
  const body = {
    function: playground.func, start: playground.start, steps: playground.steps,
    optimizers: playground.entries.map((e) => ({ name: e.name, hp: e.hp })),
  };
  try {
    const result = await api("/api/playground", body);
    if (ticket !== playground.request) return;
    showError("");
    playground.result = result;
    playground.step = result.steps;
    const slider = $("#pg-step");
    slider.max = result.steps;
    slider.value = result.steps;
    drawPaths();
    renderPanel();
    playground.draws += 1;
    document.body.dataset.draws = playground.draws;
  } catch (e) {
    showError(e.message);
  }
}

// Data coordinates to pixels: the SVG group's transform, so that the
// polylines hold the very coordinates the server computed.
function mapTransform() {
  const [[x0, x1], [y0, y1]] = functionInfo().window;
  const size = 520;
  const sx = size / (x1 - x0), sy = size / (y1 - y0);
  return { sx, sy, x0, y1, toData: (px, py) => [x0 + px / sx, y1 - py / sy] };
}

async function drawContour() {
  const c = await api(`/api/contour?function=${playground.func}`);
  playground.contour = c;
  const canvas = $("#pg-canvas");
  const ctx = canvas.getContext("2d");
  const low = Math.min(...c.values.filter(Number.isFinite));
  const level = (f) => Math.log10(f - low + 1e-3);
  const levels = c.values.map(level);
  const top = Math.max(...levels), bottom = Math.min(...levels);
  const bands = 16;
  const w = canvas.width / c.cols, h = canvas.height / c.rows;
  for (let r = 0; r < c.rows; r++) {
    for (let col = 0; col < c.cols; col++) {
      const t = (levels[r * c.cols + col] - bottom) / (top - bottom || 1);
      const band = Math.floor(t * bands) / bands;
      ctx.fillStyle = `hsl(${210 - 170 * band}, 60%, ${88 - 38 * band}%)`;
      ctx.fillRect(col * w, canvas.height - (r + 1) * h, w + 1, h + 1);
    }
  }
}

function drawPaths() {
  const svg = $("#pg-svg");
  const t = mapTransform();
  const group = element("g", { transform: `matrix(${t.sx} 0 0 ${-t.sy} ${-t.x0 * t.sx} ${t.y1 * t.sy})` });
  for (const m of functionInfo().minima) {
    group.append(element("circle", { cx: m[0], cy: m[1], r: 5 / t.sx, fill: "#fff", stroke: "#000", "vector-effect": "non-scaling-stroke" }));
  }
  group.append(element("circle", { cx: playground.start[0], cy: playground.start[1], r: 4 / t.sx, fill: "#000" }));
  const result = playground.result;
  (result ? result.paths : []).forEach((path, index) => {
    const colour = COLOURS[index % COLOURS.length];
    const shown = path.points.filter((p) => p.step <= playground.step);
    group.append(element("polyline", {
      class: "path-full", points: path.points.map((p) => `${p.x},${p.y}`).join(" "),
      fill: "none", stroke: colour, "stroke-width": 1, opacity: 0.35, "vector-effect": "non-scaling-stroke",
    }));
    group.append(element("polyline", {
      class: "path", "data-index": index, "data-optimizer": path.optimizer,
      points: shown.map((p) => `${p.x},${p.y}`).join(" "),
      fill: "none", stroke: colour, "stroke-width": 2, "vector-effect": "non-scaling-stroke",
    }));
    const here = shown[shown.length - 1];
    if (here) group.append(element("circle", { cx: here.x, cy: here.y, r: 4 / t.sx, fill: colour }));
  });
  svg.replaceChildren(group);
  $("#pg-step-label").textContent = `step ${playground.step} / ${result ? result.steps : 0}`;
}

function renderPanel() {
  const panel = $("#pg-panel");
  const path = playground.result && playground.result.paths[playground.selected];
  if (!path) { panel.replaceChildren(); return; }
  const info = catalog.byName[path.optimizer];
  const k = Math.min(playground.step, path.points.length - 1);
  const point = path.points[k];
  const state = path.step_states[k];
  const rows = [];
  const row = (label, values, attributes) => {
    const cells = (Array.isArray(values) ? values : [values]).map((v) => element("td", { text: short(v) }));
    rows.push(element("tr", { ...attributes, "data-values": JSON.stringify(values) }, [element("td", { text: label }), ...cells]));
  };
  row("(x, y)", [point.x, point.y], { "data-field": "point" });
  row("f", point.f, { "data-field": "f" });
  if (state) {
    row("gradient", state.gradient, { "data-field": "gradient" });
    row("update Δθ", state.update, { "data-field": "update" });
    row("Δθ ÷ gradient", state.update_per_gradient, { "data-field": "update_per_gradient" });
    for (const [name, values] of Object.entries(state.state.tensors)) row(name, values, { "data-tensor": name });
    for (const [name, value] of Object.entries(state.state.counters)) row(name, value, { "data-counter": name });
  }
  panel.replaceChildren(
    element("h3", { text: `${path.entrant}, step ${k}` }),
    element("div", { class: "equation", text: path.equation || info.about }),
    element("p", { text: state ? `The step from point ${k} to ${k + 1}, and the optimizer's state after it (read from the Rust optimizer).` : (path.stopped || "The last point: no step taken here.") }),
    element("table", { id: "pg-values" }, rows),
  );
}

function setStep(step) {
  playground.step = step;
  $("#pg-step").value = step;
  drawPaths();
  renderPanel();
}

function play() {
  if (playground.playing) { clearInterval(playground.playing); playground.playing = null; return; }
  setStep(0);
  playground.playing = setInterval(() => {
    if (!playground.result || playground.step >= playground.result.steps) {
      clearInterval(playground.playing);
      playground.playing = null;
      return;
    }
    setStep(playground.step + 1);
  }, 20);
}

async function selectFunction(name) {
  playground.func = name;
  const info = functionInfo();
  playground.start = info.start.slice();
  $("#pg-formula").textContent = `f(x, y) = ${info.formula}`;
  $("#pg-start").textContent = `(${info.start[0]}, ${info.start[1]})`;
  for (const entry of playground.entries) if ("lr" in entry.hp) entry.hp.lr = info.suggested_lr;
  renderCards();
  await drawContour();
  recompute();
}

function setupPlayground() {
  optionList($("#pg-function"), catalog.functions.map((f) => f.name));
  optionList($("#pg-add"), catalog.optimizers.map((o) => o.name));
  $("#pg-function").addEventListener("change", (e) => selectFunction(e.target.value));
  $("#pg-add-button").addEventListener("click", () => addOptimizer($("#pg-add").value));
  $("#pg-steps").addEventListener("input", (e) => {
    const steps = Number(e.target.value);
    const ok = Number.isInteger(steps) && steps >= 1 && steps <= 5000;
    e.target.classList.toggle("invalid", !ok);
    if (ok) { playground.steps = steps; recompute(); }
  });
  $("#pg-step").addEventListener("input", (e) => setStep(Number(e.target.value)));
  $("#pg-play").addEventListener("click", play);
  $("#pg-svg").addEventListener("click", (e) => {
    const box = e.currentTarget.getBoundingClientRect();
    const [x, y] = mapTransform().toData(e.clientX - box.left, e.clientY - box.top);
    playground.start = [Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000];
    $("#pg-start").textContent = `(${playground.start[0]}, ${playground.start[1]})`;
    recompute();
  });
  playground.entries = ["clipped_adam", "sgd"].map((name) => ({ name, hp: {} }));
  playground.func = catalog.functions[0].name;
  for (const entry of playground.entries) entry.hp = defaultsOf(entry.name);
  selectFunction(playground.func);
}

// ---------- training monitor ----------

const monitor = { runs: [], hp: {} };

function renderRunHps() {
  const name = $("#mon-optimizer").value;
  monitor.hp = {};
  const controls = catalog.byName[name].hyperparams.map((spec) => {
    monitor.hp[spec.name] = spec.default;
    return hpControl(spec, spec.default, (key, x) => { monitor.hp[key] = x; });
  });
  $("#mon-hps").replaceChildren(...controls);
}

async function startRun() {
  const body = {
    n_hidden: Number($("#mon-track").value), seed: Number($("#mon-seed").value),
    max_epochs: Number($("#mon-epochs").value), optimizer: $("#mon-optimizer").value, hp: monitor.hp,
  };
  try {
    const run = await api("/api/runs", body);
    showError("");
    follow(`run ${run.id}: ${run.settings.entrant} n_hidden=${body.n_hidden} seed=${body.seed}`,
      `/api/runs/${run.id}/events`, `run-${run.id}`);
  } catch (e) {
    showError(e.message);
  }
}

function follow(label, url, key) {
  const run = { key, label, epochs: [], summary: null, error: null, colour: COLOURS[monitor.runs.length % COLOURS.length] };
  monitor.runs.push(run);
  const source = new EventSource(url);
  source.addEventListener("epoch", (e) => { run.epochs.push(JSON.parse(e.data)); renderMonitor(); });
  source.addEventListener("summary", (e) => { run.summary = JSON.parse(e.data); source.close(); renderMonitor(); });
  source.addEventListener("failed", (e) => { run.error = JSON.parse(e.data).error; source.close(); renderMonitor(); });
  source.onerror = () => { if (run.summary || run.error) source.close(); };
  renderMonitor();
}

function renderMonitor() {
  const rows = monitor.runs.map((run) => {
    const last = run.epochs[run.epochs.length - 1] || {};
    const s = run.summary || {};
    const cell = (field, value) => element("td", { "data-field": field, "data-value": JSON.stringify(value ?? null), text: short(value) });
    return element("tr", { "data-run": run.key, "data-epochs": run.epochs.length, "data-done": run.summary ? "yes" : "no" }, [
      element("td", {}, [element("span", { class: "swatch", style: `--colour: ${run.colour}` })]),
      element("td", { text: run.label + (run.error ? ` (${run.error})` : "") }),
      cell("epoch", last.epoch), cell("train_loss", last.train_loss), cell("val_loss", last.val_loss),
      cell("best_epoch", s.best_epoch ?? last.best_epoch), cell("countdown", run.summary ? null : last.countdown),
      cell("quality", s.quality), cell("recalibrated_quality", s.recalibrated_quality),
    ]);
  });
  $("#mon-runs tbody").replaceChildren(...rows);
  drawLossChart();
}

function drawLossChart() {
  const svg = $("#mon-chart");
  const width = 640, height = 380, left = 50, bottom = 30;
  const all = monitor.runs.flatMap((r) => r.epochs.flatMap((e) => [e.train_loss, e.val_loss])).filter((v) => v > 0);
  const epochs = Math.max(1, ...monitor.runs.map((r) => r.epochs.length));
  const children = [element("text", { x: left, y: 14, text: "loss per epoch (log scale): solid validation, dashed training" })];
  if (all.length > 0) {
    const lo = Math.log10(Math.min(...all)), hi = Math.log10(Math.max(...all));
    const x = (epoch) => left + (width - left - 10) * epoch / Math.max(1, epochs - 1);
    const y = (v) => 20 + (height - bottom - 20) * (hi - Math.log10(v)) / (hi - lo || 1);
    children.push(element("text", { x: 2, y: y(10 ** hi) + 4, text: short(10 ** hi) }));
    children.push(element("text", { x: 2, y: y(10 ** lo), text: short(10 ** lo) }));
    children.push(element("text", { x: width - 60, y: height - 8, text: `epoch ${epochs - 1}` }));
    for (const run of monitor.runs) {
      for (const series of ["train_loss", "val_loss"]) {
        const values = run.epochs.map((e) => e[series]);
        children.push(element("polyline", {
          "data-run": run.key, "data-series": series, "data-values": JSON.stringify(values),
          points: values.map((v, i) => `${x(i)},${y(v)}`).join(" "), fill: "none", stroke: run.colour,
          "stroke-width": 2, "stroke-dasharray": series === "train_loss" ? "4 3" : "",
        }));
      }
    }
  }
  children.push(element("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, stroke: "#90a4ae" }));
  svg.replaceChildren(...children);
}

async function refreshFiles() {
  const files = await api("/api/files");
  optionList($("#mon-watch-dir"), files.runs);
  optionList($("#race-file"), files.races);
}

function setupMonitor() {
  optionList($("#mon-optimizer"), catalog.optimizers.map((o) => o.name));
  $("#mon-optimizer").addEventListener("change", renderRunHps);
  $("#mon-start").addEventListener("click", startRun);
  $("#mon-watch").addEventListener("click", () => {
    const dir = $("#mon-watch-dir").value;
    if (dir) follow(dir, `/api/watch?dir=${encodeURIComponent(dir)}`, `dir-${dir}`);
  });
  renderRunHps();
  drawLossChart();
}

// ---------- race viewer ----------

// The axis spans the 5th percentile of all qualities to the largest, so one
// diverged entrant does not squash the others; lower values sit at the left
// edge, drawn hollow.
function qualityStrip(track) {
  const width = 640, rowHeight = 22, left = 190;
  const values = track.rows.flatMap((r) => r.qualities.map((q) => q[1])).sort((a, b) => a - b);
  const lo = values[Math.floor(0.05 * (values.length - 1))], hi = values[values.length - 1];
  const x = (q) => left + (width - left - 20) * (Math.max(q, lo) - lo) / (hi - lo || 1);
  const svg = element("svg", { width, height: rowHeight * track.rows.length + 30, class: "strip" });
  track.rows.forEach((row, i) => {
    const y = 15 + i * rowHeight;
    svg.append(element("text", { x: 0, y: y + 4, text: row.entrant }));
    const q = row.quality;
    svg.append(element("line", { x1: x(q.lower), x2: x(q.upper), y1: y, y2: y, stroke: "#263238", "stroke-width": 3 }));
    for (const [, quality] of row.qualities) {
      const colour = COLOURS[i % COLOURS.length];
      const off = quality < lo;
      svg.append(element("circle", { cx: x(quality), cy: y, r: 3, fill: off ? "none" : colour, stroke: colour, opacity: 0.7 }));
    }
    svg.append(element("line", { x1: x(q.median), x2: x(q.median), y1: y - 7, y2: y + 7, stroke: "#000", "stroke-width": 2 }));
  });
  const axis = 15 + track.rows.length * rowHeight;
  svg.append(element("text", { x: left, y: axis, text: `${short(lo)} (hollow: lower)` }));
  svg.append(element("text", { x: width - 80, y: axis, text: short(hi) }));
  return svg;
}

function pairedTable(track, level) {
  const head = element("tr", {}, ["entrant", `median difference vs ${track.baseline}`, `${Math.round(level * 100)}% interval`, "wins", "losses", "ties"]
    .map((t) => element("th", { text: t })));
  const rows = track.paired.map((p) => element("tr", { "data-entrant": p.entrant }, [
    element("td", { text: p.entrant }),
    element("td", { "data-field": "median", "data-value": JSON.stringify(p.estimate && p.estimate.median), text: short(p.estimate && p.estimate.median) }),
    element("td", { text: p.estimate ? `[${short(p.estimate.lower)}, ${short(p.estimate.upper)}]` : "–" }),
    element("td", { text: p.wins }), element("td", { text: p.losses }), element("td", { text: p.ties }),
  ]));
  return element("table", { class: "race-table" }, [head, ...rows]);
}

async function showRace() {
  const file = $("#race-file").value;
  if (!file) return;
  const baseline = $("#race-baseline").value;
  try {
    const race = await api(`/api/race?file=${encodeURIComponent(file)}${baseline ? `&baseline=${encodeURIComponent(baseline)}` : ""}`);
    showError(race.warnings.join("; "));
    const labels = [...new Set(race.tracks.flatMap((t) => t.rows.map((r) => r.entrant)))];
    const select = $("#race-baseline");
    const chosen = select.value;
    select.replaceChildren(element("option", { value: "", text: "(default)" }), ...labels.map((l) => element("option", { value: l, text: l })));
    select.value = chosen;
    $("#race-tracks").replaceChildren(...race.tracks.map((track) => element("div", { class: "track", "data-track": track.n_hidden }, [
      element("h3", { text: `n_hidden = ${track.n_hidden}: quality per seed (dots), median (bar) and its ${Math.round(race.level * 100)}% interval` }),
      qualityStrip(track),
      pairedTable(track, race.level),
    ])));
  } catch (e) {
    showError(e.message);
  }
}

function setupRace() {
  $("#race-load").addEventListener("click", showRace);
  $("#race-file").addEventListener("change", showRace);
  $("#race-baseline").addEventListener("change", showRace);
}

// ---------- tabs and start ----------

function showTab(name) {
  for (const section of document.querySelectorAll(".tab")) section.hidden = section.id !== name;
  for (const button of document.querySelectorAll("nav button")) button.classList.toggle("active", button.dataset.tab === name);
  if (name !== "playground") refreshFiles().catch((e) => showError(e.message));
}

async function main() {
  for (const button of document.querySelectorAll("nav button")) button.addEventListener("click", () => showTab(button.dataset.tab));
  try {
    await loadCatalog();
  } catch (e) {
    showError(`cannot load the catalog: ${e.message}`);
    return;
  }
  setupPlayground();
  setupMonitor();
  setupRace();
  document.body.dataset.ready = "yes";
}

main();
