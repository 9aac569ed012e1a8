// kmq serve: the page. Plain JavaScript, no build step, no library: it
// talks only to this server's /api (see README.md, "Web page").
"use strict";

const $ = (id) => document.getElementById(id);
const grouped = new Intl.NumberFormat("en-US");
const SVG = "http://www.w3.org/2000/svg";

const state = {
  image: null,          // the upload's info (GET /api/images/{id})
  file: null,           // what was uploaded, to upload again if the server dropped it
  options: [],          // GET /api/options
  curveKs: [],
  values: {},           // the current settings, by option name (null: not given)
  showEffective: {},    // name -> shows the value kmq used for a setting not given
  seq: 0,               // number of the newest update; older responses are dropped
  controller: null,     // AbortController of the update in flight
  inFlight: false,
  lastInput: 0,         // performance.now() of the last slider or setting change
  curve: { seq: 0, running: false, request: null, points: [] },
  view: { scale: 1, tx: 0, ty: 0, fitted: true },
  divider: 0.5,
  pointers: new Map(),
};
// For the browser test and for curious users: time from the last input to
// the result shown, and to every figure shown, in milliseconds.
window.kmq = { timings: [] };

// -- messages -----------------------------------------------------------------

function showMessage(text) {
  const box = $("message");
  box.textContent = text;
  box.hidden = false;
}
function clearMessage() { $("message").hidden = true; $("message").textContent = ""; }

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(url, init = {}) {
  const response = await fetch(url, init);
  if (!response.ok) {
    let message = `kmq: error: ${response.status} ${response.statusText}`;
    try { message = (await response.json()).message || message; } catch (_) { /* not JSON */ }
    throw new ApiError(response.status, message);
  }
  return response;
}

function isAbort(error) { return error && error.name === "AbortError"; }

// -- uploading ----------------------------------------------------------------

async function upload(body, name, type) {
  clearMessage();
  setBusy(true, "reading the image…");
  const headers = { "Content-Type": type || "application/octet-stream" };
  const query = name ? `?name=${encodeURIComponent(name)}` : "";
  try {
    const info = await (await api(`/api/images${query}`, { method: "POST", body, headers })).json();
    state.file = { body, name, type };
    await setImage(info);
  } catch (error) {
    setBusy(false);
    showMessage(error.message);
  }
}

function uploadFile(file) {
  if (file) upload(file, file.name, file.type || "application/octet-stream");
}

async function setImage(info) {
  state.image = info;
  cancelCurve();
  state.curve.points = [];
  drawCurve();
  const original = $("img-original");
  original.src = `/api/images/${info.id}/original.png`;
  await original.decode().catch(() => {});
  $("img-result").removeAttribute("src");
  $("viewer").dataset.state = "loading";
  $("n-image").textContent = `${info.width} × ${info.height} ${info.mode}` + (info.notes.length ? ` (${info.notes.join("; ")})` : "");
  $("n-original").textContent = info.bytes == null ? "–" : `${grouped.format(info.bytes)} B`;
  $("viewer").style.setProperty("--aspect", String(info.height / info.width));
  state.view.fitted = true;
  fit();
  state.lastInput = performance.now();
  update();
}

// -- settings -----------------------------------------------------------------

function query(values, skip = []) {
  const parts = [];
  for (const option of state.options) {
    const value = values[option.name];
    if (skip.includes(option.name) || value === null || value === undefined || value === "") continue;
    parts.push(`${option.name}=${encodeURIComponent(value)}`);
  }
  return parts.join("&");
}

function settingChanged(name, value, immediate) {
  state.values[name] = value;
  state.lastInput = performance.now();
  cancelCurve();        // the curve depends on every setting but K
  state.curve.points = [];
  drawCurve();
  if (immediate) update(); else scheduleUpdate();
}

// A slider with its value beside it (dithering, speed). A setting that is
// not given (dithering) shows the value kmq used, from the result's
// "compress" keywords, marked "auto".
function sliderControl(option, id, step) {
  const input = document.createElement("input");
  input.type = "range";
  input.min = option.low;
  input.max = option.high;
  input.step = step;
  const out = document.createElement("output");
  out.htmlFor = id;
  out.id = `${id}-value`;
  const show = (value, auto) => {
    input.value = value;
    out.textContent = option.kind === "int" ? String(value) : Number(value).toFixed(2);
    out.classList.toggle("auto", Boolean(auto));
    out.title = auto ? `not set: ${option.auto}` : "";
  };
  show(option.default === null ? option.auto_value : option.default, option.default === null);
  input.addEventListener("input", () => {
    show(input.value, false);
    settingChanged(option.name, input.value, false);
  });
  state.showEffective[option.name] = (value) => { if (state.values[option.name] === null) show(value, true); };
  return [input, out];
}

// Quality MIN-MAX as two number boxes; both empty: no target.
function qualityControl(option, id) {
  const box = document.createElement("div");
  box.className = "pair";
  const make = (which, placeholder) => {
    const input = document.createElement("input");
    input.type = "number";
    input.min = option.low;
    input.max = option.high;
    input.step = "any";
    input.placeholder = placeholder;
    input.id = `${id}-${which}`;
    input.setAttribute("aria-label", `quality ${which}`);
    input.title = option.help;
    return input;
  };
  const low = make("min", "min"), high = make("max", "max");
  const dash = document.createElement("span");
  dash.textContent = "–";
  const changed = () => {
    const a = low.value.trim(), b = high.value.trim();
    // kmq compress --quality's form: MIN-MAX, or MAX alone (MIN 0).
    const value = !a && !b ? null : !a ? b : `${a}-${b || 100}`;
    settingChanged(option.name, value, true);
  };
  low.addEventListener("change", changed);
  high.addEventListener("change", changed);
  box.append(low, dash, high);
  return box;
}

function buildOptions() {
  const main = $("main-options");
  const more = $("options");
  for (const row of main.querySelectorAll(".opt-row")) row.remove(); // K's row stays
  more.textContent = "";
  state.showEffective = {};
  for (const option of state.options) {
    state.values[option.name] = option.default;
    if (option.name === "k") continue; // the slider
    const id = `opt-${option.name}`;
    const label = document.createElement("label");
    label.htmlFor = id;
    label.textContent = { space: "colour space", dither: "dithering", quality: "quality" }[option.name] || option.name.replace(/_/g, " ");
    label.title = option.help;
    let parts;
    if (option.kind === "choice") {
      const input = document.createElement("select");
      for (const choice of option.choices) {
        const item = document.createElement("option");
        item.value = item.textContent = choice;
        input.append(item);
      }
      input.value = option.default;
      input.addEventListener("change", () => settingChanged(option.name, input.value, true));
      parts = [input];
    } else if (option.kind === "range") {
      label.htmlFor = `${id}-max`;
      parts = [qualityControl(option, id)];
    } else if (option.group === "main") {
      parts = sliderControl(option, id, option.kind === "int" ? "1" : "0.05");
    } else {
      const input = document.createElement("input");
      input.type = "number";
      input.step = option.kind === "int" ? "1" : "any";
      if (option.low !== null) input.min = option.low;
      if (option.high !== null) input.max = option.high;
      if (option.default === null) input.placeholder = option.auto || "off"; else input.value = option.default;
      input.addEventListener("change", () => settingChanged(option.name, input.value === "" ? null : input.value, true));
      parts = [input];
      // Not given: the value kmq used (e.g. set by speed) as the placeholder.
      if (option.default === null) state.showEffective[option.name] = (value) => {
        input.placeholder = value === null ? (option.auto || "off") : `${value} (auto)`;
      };
    }
    parts[0].id = parts[0].id || id;
    parts[0].title = option.help;
    if (option.group === "main") {
      const row = document.createElement("div");
      row.className = "opt-row";
      row.append(label, ...parts);
      main.append(row);
    } else {
      more.append(label, ...parts);
    }
  }
}

function showEffective(meta) {
  for (const [name, show] of Object.entries(state.showEffective)) show(meta.compress[name]);
}

function setK(k, from) {
  k = Math.max(2, Math.min(256, Math.round(Number(k)) || 2));
  state.values.k = k;
  if (from !== "range") $("k-range").value = k;
  if (from !== "number") $("k-number").value = k;
  state.lastInput = performance.now();
  drawCurve();
  scheduleUpdate();
}

let updateTimer = 0;
function scheduleUpdate() {
  // Coalesce the slider's input events (one per frame at most); each new
  // one aborts the request in flight (see update). Nothing in flight: at once.
  clearTimeout(updateTimer);
  if (!state.inFlight) update();
  else updateTimer = setTimeout(update, 16);
}

// The WebP size (seconds of lossless encoding for a large image, which no
// request can stop once begun) is asked for once the settings have rested
// this long, not for every K the slider passes.
const WEBP_AFTER_MS = 1000;

// -- the update: newest settings -> result shown ----------------------------------

async function update() {
  if (!state.image) return;
  // A newer position of the slider makes the request in flight stale:
  // abort it (the server drops it too) and ignore whatever it still returns.
  if (state.controller) state.controller.abort();
  const controller = new AbortController();
  const seq = ++state.seq;
  state.controller = controller;
  state.inFlight = true;
  pauseCurve();
  const started = state.lastInput;
  const values = { ...state.values };
  const image = state.image;
  const q = query(values);
  setDownloads(image, values, q);
  setBusy(true);
  const stale = () => seq !== state.seq;
  try {
    // Both at once: the server compresses once (the second waits for the
    // first's result) and the figures do not wait for the picture's transfer.
    const [meta, blob] = await Promise.all([
      api(`/api/images/${image.id}/result?${q}&quick=1`, { signal: controller.signal }).then((r) => r.json()),
      api(`/api/images/${image.id}/result.png?${q}`, { signal: controller.signal }).then((r) => r.blob()),
    ]);
    if (stale()) return;
    const img = $("img-result");
    const previous = img.src;
    img.src = URL.createObjectURL(blob);
    await img.decode().catch(() => {});
    if (previous.startsWith("blob:")) URL.revokeObjectURL(previous);
    if (stale()) return;
    const shown = performance.now() - started;
    clearMessage();
    showNumbers(meta);
    const viewer = $("viewer");
    viewer.dataset.state = "shown";
    viewer.dataset.k = String(values.k);
    viewer.dataset.seq = String(seq);
    const timing = { k: values.k, seed: values.seed, space: values.space, dither: values.dither, shown_ms: shown, numbers_ms: null };
    window.kmq.timings.push(timing);
    setBusy(true, "measuring…");
    // SSIM, the perceptual score and the .kmq size first; WebP's (the slowest encoder) after.
    const most = await fullMetadata(image, `${q}&webp=0`, controller.signal, stale);
    if (!most || stale()) return;
    showNumbers(most);
    viewer.dataset.state = "measured";
    await sleep(Math.max(0, WEBP_AFTER_MS - (performance.now() - state.lastInput)));
    if (stale()) return;
    const full = await fullMetadata(image, q, controller.signal, stale);
    if (!full || stale()) return;
    showNumbers(full);
    timing.numbers_ms = performance.now() - started;
    viewer.dataset.state = "complete";
    setBusy(false);
    if (!state.curve.points.length && !state.curve.running) startCurve();
  } catch (error) {
    if (isAbort(error) || stale()) return;
    setBusy(false);
    if (error.status === 404 && state.file) {
      // The server dropped the upload from its cache: give it again.
      upload(state.file.body, state.file.name, state.file.type);
      return;
    }
    showMessage(error.message);
    // No result for these settings (a quality target missed, say): show
    // none rather than the last one's picture and figures.
    $("viewer").dataset.state = "error";
    $("img-result").removeAttribute("src");
    clearNumbers();
    for (const fmt of ["png", "webp", "gif", "kmq"]) $(`dl-${fmt}`).setAttribute("aria-disabled", "true");
  } finally {
    if (!stale()) state.inFlight = false;
  }
}

async function fullMetadata(image, q, signal, stale) {
  for (;;) {
    try {
      return await (await api(`/api/images/${image.id}/result?${q}`, { signal })).json();
    } catch (error) {
      if (error.status !== 503 || stale()) throw error;
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}

function setBusy(on, text) {
  const busy = $("busy");
  busy.hidden = !on;
  if (on) busy.textContent = text || "computing…";
}

function setDownloads(image, values, q) {
  const stem = (image.name.split("?")[0].split("/").pop() || "image").replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._-]+/g, "_") || "image";
  for (const fmt of ["png", "webp", "gif", "kmq"]) {
    const link = $(`dl-${fmt}`);
    link.href = `/api/images/${image.id}/result.${fmt}?${q}`;
    link.download = `${stem}-k${values.k}.${fmt}`;
    link.removeAttribute("aria-disabled");
  }
}

// -- numbers and palette ---------------------------------------------------------

function bytesCell(id, value, original) {
  const cell = $(id);
  cell.classList.toggle("pending", value === null);
  if (value === null) { cell.textContent = "…"; return; }
  cell.textContent = `${grouped.format(value)} B`;
  if (original) {
    const rel = document.createElement("span");
    rel.className = "rel";
    rel.textContent = `${(100 * value / original).toFixed(1)} %`;
    cell.append(rel);
  }
}

function clearNumbers() {
  for (const id of ["n-k", "n-png", "n-webp", "n-kmq", "n-psnr", "n-ssim", "n-perceptual", "n-alpha", "n-ratio", "n-time", "n-quality"]) {
    $(id).textContent = "–";
    $(id).classList.remove("pending");
  }
  $("tag-result").textContent = "no result";
  $("palette").textContent = "";
  $("palette-note").textContent = "";
  showGifNote(null);
}

function showNumbers(meta) {
  const b = meta.bytes;
  const target = meta.compress.quality;
  $("n-k").textContent = (target ? `${meta.k} of ${meta.k_requested} colours` : `${meta.k} colours`) + (meta.lossless ? " (lossless: every colour kept)" : "");
  $("row-quality").hidden = !target;
  if (target) {
    $("n-quality").textContent = meta.quality === null ? "–" : `${meta.quality.toFixed(1)} (target ${target[0]}–${target[1]})`;
    $("n-quality").title = meta.quality_note || "";
  }
  showEffective(meta);
  bytesCell("n-png", b.png, b.original);
  bytesCell("n-webp", b.webp, b.original);
  bytesCell("n-kmq", b.kmq, b.original);
  $("n-psnr").textContent = meta.psnr === null ? "∞ (identical)" : `${meta.psnr.toFixed(2)} dB`;
  $("n-ssim").textContent = meta.ssim === null ? (meta.complete ? "–" : "…") : meta.ssim.toFixed(4);
  $("n-ssim").classList.toggle("pending", meta.ssim === null && !meta.complete);
  const score = meta.perceptual_score;
  $("n-perceptual").textContent = score === null ? (meta.complete ? "–" : "…") : score.toFixed(1);
  $("n-perceptual").classList.toggle("pending", score === null && !meta.complete);
  showAlpha(meta);
  showGifNote(meta.gif_note);
  $("n-ratio").textContent = `${meta.ratio.toFixed(4)} = ${meta.ratio_to_1.toFixed(1)}:1`;
  $("n-time").textContent = `${meta.seconds.toFixed(2)} s`;
  $("tag-result").textContent = `K = ${meta.k}`;
  showPalette(meta.palette);
}

// The GIF button says when GIF's on/off transparency changes the result
// (the server's note, the one kmq compress prints, as its tooltip).
function showGifNote(note) {
  const link = $("dl-gif");
  link.textContent = note ? "GIF (on/off alpha)" : "GIF";
  link.title = note || "";
}

// A share as a percentage that says 100 % only when it is exact (as the
// CLI's report): 99.996 % of opaque pixels kept is not all of them.
function share(fraction) {
  if (fraction === 1) return "100 %";
  return `${Math.min(Math.floor(fraction * 10000) / 100, 99.99).toFixed(2)} %`;
}

function showAlpha(meta) {
  const parts = [];
  if (meta.opaque_kept !== null) parts.push(`opaque at 255: ${share(meta.opaque_kept)}`);
  if (meta.transparent_kept !== null) parts.push(`transparent at 0: ${share(meta.transparent_kept)}`);
  $("row-alpha").hidden = parts.length === 0;
  $("n-alpha").textContent = parts.length ? parts.join(" · ") : "–";
}

function showPalette(palette) {
  const box = $("palette");
  box.textContent = "";
  const sorted = [...palette].sort((a, b) => b.share - a.share || a.index - b.index);
  for (const entry of sorted) {
    const item = document.createElement("div");
    item.className = "swatch";
    const percent = 100 * entry.share;
    item.title = `${entry.hex}${entry.alpha < 255 ? ` alpha ${entry.alpha}` : ""} · ${percent.toFixed(2)} % · ${grouped.format(entry.pixels)} pixels`;
    const chip = document.createElement("i");
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(entry.hex.slice(i, i + 2), 16));
    const colour = `rgba(${r}, ${g}, ${b}, ${entry.alpha / 255})`;
    // A translucent or transparent entry over the viewer's checkerboard, as
    // it is seen: over the white panel alone it would look pale or white.
    chip.style.background = entry.alpha < 255
      ? `linear-gradient(${colour}, ${colour}), repeating-conic-gradient(#d6d6d2 0 25%, #f7f7f5 0 50%) 0 0 / 10px 10px`
      : colour;
    item.append(chip, document.createTextNode(percent >= 10 ? `${percent.toFixed(0)}%` : `${percent.toFixed(1)}%`));
    box.append(item);
  }
  $("palette-note").textContent = `${palette.length} colours, by share of the pixels`;
}

// -- the curve: size and quality against K -----------------------------------

function cancelCurve() {
  if (state.curve.request) state.curve.request.abort();
  state.curve.request = null;
  state.curve.running = false;
  state.curve.seq++;
  $("curve-note").textContent = "";
}

// The slider comes first: a new update aborts the curve's request in
// flight (the server stops its job at the next step), and the curve asks
// for that K again once the update is done.
function pauseCurve() {
  if (state.curve.request) state.curve.request.abort();
}

async function startCurve() {
  cancelCurve();
  const image = state.image;
  const seq = state.curve.seq;
  state.curve.running = true;
  state.curve.points = [];
  const q = query(state.values, ["k"]);
  $("curve-note").textContent = "measuring…";
  try {
    for (const k of state.curveKs) {
      for (;;) {
        while (state.inFlight) await sleep(100);
        if (seq !== state.curve.seq) return;
        const request = new AbortController();
        state.curve.request = request;
        let data;
        try {
          data = await (await api(`/api/images/${image.id}/curve?ks=${k}&${q}`, { signal: request.signal })).json();
        } catch (error) {
          if (isAbort(error) && seq === state.curve.seq) continue; // paused: ask again
          throw error;
        } finally {
          if (state.curve.request === request) state.curve.request = null;
        }
        if (seq !== state.curve.seq) return;
        state.curve.points.push(...data.points);
        drawCurve();
        break;
      }
    }
    $("curve-note").textContent = `seed ${state.values.seed}; click to set K`;
  } catch (error) {
    if (isAbort(error) || seq !== state.curve.seq) return;
    $("curve-note").textContent = error.status === 503 ? "server busy" : error.message;
  } finally {
    if (seq === state.curve.seq) state.curve.running = false;
  }
}

function el(name, attrs, parent, text) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  parent.append(node);
  return node;
}

function drawCurve() {
  const svg = $("curve");
  svg.textContent = "";
  const W = 360, left = 46, right = 40, width = W - left - right;
  const x = (k) => left + width * (Math.log2(k) - 1) / 7;
  const points = state.curve.points;
  const panels = [
    { top: 8, height: 90, title: "size (kB)" },
    { top: 126, height: 90, title: "quality" },
  ];
  const original = state.image && state.image.bytes;
  const maxBytes = Math.max(1, ...points.map((p) => Math.max(p.png, p.kmq)));
  const psnrs = points.map((p) => p.psnr).filter((v) => v !== null);
  const lowDb = psnrs.length ? Math.floor(Math.min(...psnrs) / 5) * 5 : 10;
  const highDb = psnrs.length ? Math.ceil(Math.max(...psnrs) / 5) * 5 : 40;
  for (const panel of panels) {
    el("line", { x1: left, x2: left + width, y1: panel.top + panel.height, y2: panel.top + panel.height, class: "axis" }, svg);
    el("line", { x1: left, x2: left, y1: panel.top, y2: panel.top + panel.height, class: "axis" }, svg);
    for (const k of [2, 4, 8, 16, 32, 64, 128, 256]) {
      el("line", { x1: x(k), x2: x(k), y1: panel.top, y2: panel.top + panel.height, class: "grid" }, svg);
      el("text", { x: x(k), y: panel.top + panel.height + 12, "text-anchor": "middle" }, svg, k);
    }
  }
  el("text", { x: left + width / 2, y: 244, "text-anchor": "middle" }, svg, "K (colours)");
  const sizeY = (v) => panels[0].top + panels[0].height * (1 - v / maxBytes);
  const dbY = (v) => panels[1].top + panels[1].height * (1 - (v - lowDb) / Math.max(1, highDb - lowDb));
  const ssimY = (v) => panels[1].top + panels[1].height * (1 - v);
  for (let i = 0; i <= 2; i++) {
    const v = maxBytes * i / 2;
    el("text", { x: left - 4, y: sizeY(v) + 3, "text-anchor": "end" }, svg, (v / 1000).toFixed(0));
    const db = lowDb + (highDb - lowDb) * i / 2;
    el("text", { x: left - 4, y: dbY(db) + 3, "text-anchor": "end" }, svg, `${db.toFixed(0)} dB`);
    el("text", { x: left + width + 4, y: ssimY(i / 2) + 3 }, svg, (i / 2).toFixed(1));
  }
  el("text", { x: left + 4, y: panels[0].top + 10 }, svg, "PNG").setAttribute("fill", "#2456c9");
  el("text", { x: left + 34, y: panels[0].top + 10 }, svg, ".kmq").setAttribute("fill", "#c2410c");
  if (original) el("text", { x: left + width, y: panels[0].top + 10, "text-anchor": "end" }, svg, `original ${(original / 1000).toFixed(0)} kB`);
  el("text", { x: left + 4, y: panels[1].top + 10 }, svg, "PSNR").setAttribute("fill", "#15803d");
  el("text", { x: left + 40, y: panels[1].top + 10 }, svg, "SSIM (right)").setAttribute("fill", "#7c3aed");
  const sorted = [...points].sort((a, b) => a.k - b.k);
  const path = (fy, key) => sorted.filter((p) => p[key] !== null).map((p, i) => `${i ? "L" : "M"}${x(p.k).toFixed(1)},${fy(p[key]).toFixed(1)}`).join("");
  if (sorted.length) {
    el("path", { d: path(sizeY, "png"), class: "png" }, svg);
    el("path", { d: path(sizeY, "kmq"), class: "kmq" }, svg);
    el("path", { d: path(dbY, "psnr"), class: "psnr" }, svg);
    el("path", { d: path(ssimY, "ssim"), class: "ssim" }, svg);
    for (const p of sorted) {
      el("circle", { cx: x(p.k), cy: sizeY(p.png), r: 2.5, fill: "#2456c9" }, svg);
      el("circle", { cx: x(p.k), cy: sizeY(p.kmq), r: 2.5, fill: "#c2410c" }, svg);
      if (p.psnr !== null) el("circle", { cx: x(p.k), cy: dbY(p.psnr), r: 2.5, fill: "#15803d" }, svg);
    }
  }
  const k = state.values.k || 16;
  el("line", { x1: x(k), x2: x(k), y1: 6, y2: 218, class: "now" }, svg);
  const hit = el("rect", { x: left, y: 0, width, height: 232, class: "hit" }, svg);
  hit.addEventListener("click", (event) => {
    const box = svg.getBoundingClientRect();
    const sx = (event.clientX - box.left) * (W / box.width);
    setK(2 ** (1 + 7 * Math.min(1, Math.max(0, (sx - left) / width))), "curve");
  });
}

// -- the viewer: zoom, pan, divider -------------------------------------------------

function applyView() {
  const { scale, tx, ty } = state.view;
  const transform = `translate(${tx}px, ${ty}px) scale(${scale})`;
  // One transform for both: the two sides stay in step at every zoom.
  $("img-original").style.transform = transform;
  $("img-result").style.transform = transform;
  $("zoom-level").textContent = `${Math.round(scale * 100)} %`;
}

function fit() {
  const viewer = $("viewer");
  if (!state.image) return;
  const w = viewer.clientWidth, h = viewer.clientHeight;
  const scale = Math.min(w / state.image.width, h / state.image.height);
  state.view = { scale, tx: (w - state.image.width * scale) / 2, ty: (h - state.image.height * scale) / 2, fitted: true };
  applyView();
}

function zoomAt(factor, cx, cy) {
  const v = state.view;
  const scale = Math.min(64, Math.max(0.02, v.scale * factor));
  const f = scale / v.scale;
  state.view = { scale, tx: cx - (cx - v.tx) * f, ty: cy - (cy - v.ty) * f, fitted: false };
  applyView();
}

function zoomTo(scale) {
  const viewer = $("viewer");
  zoomAt(scale / state.view.scale, viewer.clientWidth / 2, viewer.clientHeight / 2);
}

function setDivider(fraction) {
  state.divider = Math.min(1, Math.max(0, fraction));
  const percent = state.divider * 100;
  $("divider").style.left = `${percent}%`;
  $("divider").setAttribute("aria-valuenow", String(Math.round(percent)));
  $("layer-result").style.clipPath = `inset(0 0 0 ${percent}%)`;
}

function setUpViewer() {
  const viewer = $("viewer");
  const divider = $("divider");
  viewer.addEventListener("wheel", (event) => {
    if (!state.image) return;
    event.preventDefault();
    const box = viewer.getBoundingClientRect();
    zoomAt(Math.exp(-event.deltaY * 0.0015), event.clientX - box.left, event.clientY - box.top);
  }, { passive: false });

  let dragDivider = false;
  divider.addEventListener("pointerdown", (event) => {
    dragDivider = true;
    divider.setPointerCapture(event.pointerId);
    event.stopPropagation();
  });
  divider.addEventListener("pointermove", (event) => {
    if (!dragDivider) return;
    const box = viewer.getBoundingClientRect();
    setDivider((event.clientX - box.left) / box.width);
  });
  divider.addEventListener("pointerup", () => { dragDivider = false; });
  divider.addEventListener("keydown", (event) => {
    const step = { ArrowLeft: -0.02, ArrowRight: 0.02, Home: -1, End: 1 }[event.key];
    if (step !== undefined) { setDivider(state.divider + step); event.preventDefault(); }
  });

  viewer.addEventListener("pointerdown", (event) => {
    if (!state.image) return;
    viewer.setPointerCapture(event.pointerId);
    state.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
    viewer.classList.add("panning");
  });
  viewer.addEventListener("pointermove", (event) => {
    const previous = state.pointers.get(event.pointerId);
    if (!previous) return;
    const box = viewer.getBoundingClientRect();
    if (state.pointers.size === 2) {
      // Pinch: zoom by the change of the distance between the two fingers.
      const [a, b] = [...state.pointers.entries()];
      const other = a[0] === event.pointerId ? b[1] : a[1];
      const before = Math.hypot(previous.x - other.x, previous.y - other.y);
      const after = Math.hypot(event.clientX - other.x, event.clientY - other.y);
      if (before > 0) zoomAt(after / before, (event.clientX + other.x) / 2 - box.left, (event.clientY + other.y) / 2 - box.top);
    } else {
      state.view.tx += event.clientX - previous.x;
      state.view.ty += event.clientY - previous.y;
      state.view.fitted = false;
      applyView();
    }
    state.pointers.set(event.pointerId, { x: event.clientX, y: event.clientY });
  });
  const release = (event) => {
    state.pointers.delete(event.pointerId);
    if (!state.pointers.size) viewer.classList.remove("panning");
  };
  viewer.addEventListener("pointerup", release);
  viewer.addEventListener("pointercancel", release);
  viewer.addEventListener("dblclick", () => { if (state.view.fitted) zoomTo(1); else fit(); });
  viewer.addEventListener("keydown", (event) => {
    const box = { w: viewer.clientWidth / 2, h: viewer.clientHeight / 2 };
    if (event.key === "+" || event.key === "=") zoomAt(1.25, box.w, box.h);
    else if (event.key === "-") zoomAt(0.8, box.w, box.h);
    else if (event.key === "0") fit();
    else if (event.key === "1") zoomTo(1);
  });
  $("zoom-fit").addEventListener("click", fit);
  $("zoom-1").addEventListener("click", () => zoomTo(1));
  $("zoom-in").addEventListener("click", () => zoomTo(state.view.scale * 1.5));
  $("zoom-out").addEventListener("click", () => zoomTo(state.view.scale / 1.5));
  new ResizeObserver(() => { if (state.view.fitted) fit(); }).observe(viewer);

  // Drop and paste.
  for (const name of ["dragenter", "dragover"]) {
    document.addEventListener(name, (event) => { event.preventDefault(); viewer.classList.add("dragover"); });
  }
  document.addEventListener("dragleave", () => viewer.classList.remove("dragover"));
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    viewer.classList.remove("dragover");
    const file = event.dataTransfer.files[0];
    if (file) uploadFile(file);
    else {
      const text = event.dataTransfer.getData("text/uri-list") || event.dataTransfer.getData("text/plain");
      if (text) openUrl(text.trim().split("\n")[0]);
    }
  });
  document.addEventListener("paste", (event) => {
    if (event.target instanceof HTMLInputElement && event.target.type !== "file") return;
    const file = [...event.clipboardData.files][0];
    if (file) { event.preventDefault(); uploadFile(file); return; }
    const text = event.clipboardData.getData("text/plain").trim();
    if (/^https?:\/\//.test(text)) { event.preventDefault(); openUrl(text); }
  });
}

function openUrl(url) {
  $("url").value = url;
  upload(JSON.stringify({ url }), null, "application/json");
}

// -- start ----------------------------------------------------------------------

async function start() {
  setDivider(0.5);
  setUpViewer();
  for (const fmt of ["png", "webp", "gif", "kmq"]) $(`dl-${fmt}`).setAttribute("aria-disabled", "true");
  $("file").addEventListener("change", (event) => { uploadFile(event.target.files[0]); event.target.value = ""; });
  $("source").addEventListener("submit", (event) => {
    event.preventDefault();
    const url = $("url").value.trim();
    if (url) openUrl(url);
  });
  $("use-sample").addEventListener("click", () => upload(JSON.stringify({ sample: true }), null, "application/json"));
  $("k-range").addEventListener("input", (event) => setK(event.target.value, "range"));
  $("k-number").addEventListener("change", (event) => setK(event.target.value, "number"));
  try {
    const config = await (await api("/api/options")).json();
    state.options = config.options;
    state.curveKs = config.curve_ks;
    buildOptions();
    $("k-range").value = $("k-number").value = state.values.k;
  } catch (error) {
    showMessage(error.message);
  }
  drawCurve();
  document.body.dataset.ready = "1";
}

start();
