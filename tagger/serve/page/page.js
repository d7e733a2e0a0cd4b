// The tagger page: drop or choose a file, POST it to v1/tag, draw the top
// tags as bars, the taggram as a heat map (time on x, tags on y) with a
// playhead that follows the audio player, and for attention models the
// attention over time, and the model's note (a model trained on synthetic
// sounds says so) beside the tags. A file that fails keeps the previous
// result on the page, with the server's message above it. Plain JavaScript,
// no libraries; URLs are relative so the page works under a reverse proxy's
// path prefix.
"use strict";

const TOP_BARS = 10;
const TOP_MARKED = 5;
// viridis, as matplotlib draws tag.py's taggrams
const VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80",
                 "#5ec962", "#addc30", "#fde725"].map((hex) => [1, 3, 5].map(
                   (i) => parseInt(hex.slice(i, i + 2), 16)));

const $ = (id) => document.getElementById(id);
const state = { models: [], result: null, layout: null, objectUrl: null };

function setState(name) { document.body.dataset.state = name; }

function say(text, isError) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", Boolean(isError));
}

function color(value) {
  const x = Math.min(1, Math.max(0, value)) * (VIRIDIS.length - 1);
  const i = Math.min(VIRIDIS.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [VIRIDIS[i], VIRIDIS[i + 1]];
  return `rgb(${a.map((v, k) => Math.round(v + f * (b[k] - v))).join(",")})`;
}

function clock(seconds) {
  const whole = Math.max(0, Math.round(seconds * 10) / 10);
  const m = Math.floor(whole / 60);
  const s = whole - 60 * m;
  const text = s < 10 ? `0${s.toFixed(s % 1 ? 1 : 0)}` : s.toFixed(s % 1 ? 1 : 0);
  return `${m}:${text}`;
}

function chosenModel() {
  return state.models.find((m) => m.name === $("model").value) || state.models[0];
}

async function loadModels() {
  try {
    const response = await fetch("v1/models");
    const body = await response.json();
    if (!response.ok) throw new Error(body.error || `HTTP ${response.status}`);
    state.models = body.models;
    const select = $("model");
    for (const model of body.models) {
      const option = document.createElement("option");
      option.value = model.name;
      option.textContent = model.name;
      option.selected = model.name === body.default;
      select.appendChild(option);
    }
    describeModel();
  } catch (error) {
    say(`Cannot list the models: ${error.message}`, true);
  }
}

function describeModel() {
  const model = chosenModel();
  if (!model) return;
  $("model-info").textContent = `${model.family || "tagger"}, ${model.tags.length} tags, ` +
    `windows of ${model.window_seconds.toFixed(2)} s` +
    (model.attention ? ", attention map" : "") + ` · sha256 ${model.fingerprint.slice(0, 12)}`;
}

async function tagFile(file) {
  if (!file) return;
  const model = chosenModel();
  setState("busy");
  say(`Tagging ${file.name} (${(file.size / 1048576).toFixed(1)} MB)…`);
  const params = new URLSearchParams({ k: String(TOP_BARS), taggram: "1" });
  if (model) {
    params.set("model", model.name);
    if (model.attention) params.set("attention", "1");
  }
  const form = new FormData();
  form.append("file", file, file.name);
  let response;
  let body = null;
  try {
    response = await fetch(`v1/tag?${params}`, { method: "POST", body: form });
    body = await response.json().catch(() => null);
  } catch (error) {
    fail(file, `the server could not be reached (${error.message}).`);
    return;
  }
  if (!response.ok) {
    fail(file, body && body.error ? body.error : `the server answered HTTP ${response.status}.`);
    return;
  }
  show(file, body);
}

// a failed file: its message; the previous result, if any, stays as it was
function fail(file, message) {
  const kept = state.result ? ` (the result shown is still that of ${state.result.file})` : "";
  say(`${file.name}: ${message}${kept}`, true);
  setState("error");
}

function show(file, result) {
  state.result = result;
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.objectUrl = URL.createObjectURL(file);
  $("player").src = state.objectUrl;
  const windows = `${result.windows} window${result.windows === 1 ? "" : "s"} of ` +
    `${result.window_seconds.toFixed(2)} s`;
  $("title").textContent = `${result.file} · ${clock(result.duration)} · ${windows}` +
    (result.padded ? " (shorter than one window: zero-padded)" : "");
  $("result").hidden = false;
  $("model-note").textContent = result.note || "";
  $("model-note").hidden = !result.note;
  const tail = result.duration - result.windows * result.window_seconds;
  $("note").textContent = result.padded
    ? "Grey: the zero padding after the audio's end."
    : tail > 0.05 ? `Grey: the last ${tail.toFixed(1)} s, shorter than a window, is not scored.`
      : "";
  const best = result.top[0];
  say(`Tagged by ${result.model}: ${result.top.slice(0, 3).map(
    (t) => `${t.tag} ${t.score.toFixed(2)}`).join(", ")}.`);
  draw();
  setState("done");
  if (best) document.title = `${best.tag} · tagger`;
}

function draw() {
  if (!state.result) return;
  drawBars(state.result.top);
  drawTaggram(state.result);
  drawAttention(state.result);
  movePlayhead();
}

function drawBars(top) {
  const svg = $("bars");
  const ns = "http://www.w3.org/2000/svg";
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const width = svg.clientWidth || 280;
  const row = 27;
  const label = 112;
  const right = 44;
  svg.setAttribute("height", String(top.length * row + 4));
  svg.setAttribute("viewBox", `0 0 ${width} ${top.length * row + 4}`);
  const add = (name, attributes, text) => {
    const node = document.createElementNS(ns, name);
    for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    svg.appendChild(node);
    return node;
  };
  const span = width - label - right;
  top.forEach((item, i) => {
    const y = i * row + 4;
    add("text", { x: label - 8, y: y + 15, "text-anchor": "end" }, item.tag);
    add("rect", { class: "track", x: label, y: y + 3, width: span, height: 16, rx: 3 });
    add("rect", { class: "bar", x: label, y: y + 3, rx: 3, height: 16,
                  width: Math.max(1, span * Math.min(1, item.score)) });
    add("text", { class: "score", x: width - 4, y: y + 15, "text-anchor": "end" },
        item.score.toFixed(2));
  });
}

function taggramLayout(result, width) {
  const tags = result.tags.length;
  const rowHeight = Math.max(9, Math.min(16, Math.floor(620 / tags)));
  const font = Math.min(12, rowHeight - 1);
  const probe = document.createElement("canvas").getContext("2d");
  probe.font = `${font}px sans-serif`;
  const labelWidth = Math.ceil(Math.max(...result.tags.map((t) => probe.measureText(t).width)))
    + 16;
  const top = 6;
  const left = Math.min(labelWidth, Math.floor(width * 0.35));
  const right = width - 52;  // room for the colour bar
  const windowsEnd = result.windows * result.window_seconds;
  const span = Math.max(result.duration, windowsEnd, 1e-3);
  return { tags, rowHeight, font, top, left, right, span, height: top + tags * rowHeight + 30,
           xOf: (t) => left + (t / span) * (right - left) };
}

function sizeCanvas(canvas, width, height) {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.height = `${height}px`;
  const context = canvas.getContext("2d");
  context.setTransform(ratio, 0, 0, ratio, 0, 0);
  return context;
}

function drawTaggram(result) {
  const canvas = $("taggram");
  const width = $("taggram-box").clientWidth || 800;
  const layout = taggramLayout(result, width);
  state.layout = layout;
  const g = sizeCanvas(canvas, width, layout.height);
  g.clearRect(0, 0, width, layout.height);
  const { top, rowHeight, xOf } = layout;
  const plotBottom = top + layout.tags * rowHeight;
  // the scored windows; past them (the dropped tail, or a short file's padding) grey
  g.fillStyle = "#c9ced6";
  g.fillRect(layout.left, top, layout.right - layout.left, plotBottom - top);
  const scores = result.taggram.scores;
  const starts = result.taggram.starts;
  for (let w = 0; w < scores.length; w++) {
    const x0 = Math.floor(xOf(starts[w]));
    const x1 = Math.ceil(xOf(Math.min(starts[w] + result.window_seconds, layout.span)));
    for (let t = 0; t < layout.tags; t++) {
      g.fillStyle = color(scores[w][t]);
      g.fillRect(x0, top + t * rowHeight, Math.max(1, x1 - x0), rowHeight);
    }
  }
  if (result.padded) {  // the zero padding after the audio's end
    g.fillStyle = "rgba(128, 128, 128, 0.55)";
    g.fillRect(xOf(result.duration), top, layout.right - xOf(result.duration), plotBottom - top);
  }
  // tag names, the best ones marked as in tag.py's taggrams
  const marked = new Set(result.top.slice(0, TOP_MARKED).map((t) => t.tag));
  g.textAlign = "right";
  g.textBaseline = "middle";
  result.tags.forEach((tag, t) => {
    const strong = marked.has(tag);
    g.font = `${strong ? "bold " : ""}${layout.font}px sans-serif`;
    g.fillStyle = strong ? "#c0392b" : "#1d2430";
    g.fillText(tag, layout.left - 6, top + (t + 0.5) * rowHeight);
  });
  // time axis
  g.fillStyle = "#5b6678";
  g.strokeStyle = "#5b6678";
  g.font = "11px sans-serif";
  g.textAlign = "center";
  g.textBaseline = "top";
  const steps = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600];
  const step = steps.find((s) => (s / layout.span) * (layout.right - layout.left) >= 64) || 600;
  for (let t = 0; t <= layout.span + 1e-6; t += step) {
    const x = xOf(t);
    g.beginPath();
    g.moveTo(x, plotBottom);
    g.lineTo(x, plotBottom + 4);
    g.stroke();
    g.fillText(clock(t), x, plotBottom + 6);
  }
  // colour bar
  const barX = layout.right + 12;
  for (let y = 0; y < plotBottom - top; y++) {
    g.fillStyle = color(1 - y / (plotBottom - top));
    g.fillRect(barX, top + y, 10, 1);
  }
  g.textAlign = "left";
  g.textBaseline = "middle";
  g.fillStyle = "#5b6678";
  g.fillText("1", barX + 14, top + 5);
  g.fillText("0", barX + 14, plotBottom - 5);
  const head = $("playhead");
  head.style.height = `${plotBottom - top}px`;
  head.style.top = `${top}px`;
}

function drawAttention(result) {
  const box = $("attention-box");
  if (!result.attention || !state.layout) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const layout = state.layout;
  const width = $("taggram-box").clientWidth || 800;
  const height = 64;
  const g = sizeCanvas($("attention"), width, height);
  g.clearRect(0, 0, width, height);
  const values = result.attention.values;
  const peak = Math.max(...values, 1e-9);
  const step = result.attention.step_seconds;
  g.fillStyle = "#eef1f5";
  g.fillRect(layout.left, 2, layout.right - layout.left, height - 4);
  g.beginPath();
  g.moveTo(layout.xOf(0), height - 2);
  values.forEach((v, i) => {
    const x = layout.xOf(Math.min(i * step, layout.span));
    const y = height - 2 - (v / peak) * (height - 6);
    g.lineTo(x, y);
    g.lineTo(layout.xOf(Math.min((i + 1) * step, layout.span)), y);
  });
  g.lineTo(layout.xOf(Math.min(values.length * step, layout.span)), height - 2);
  g.closePath();
  g.fillStyle = "rgba(192, 57, 43, 0.75)";
  g.fill();
  g.fillStyle = "#1d2430";
  g.font = "12px sans-serif";
  g.textAlign = "right";
  g.textBaseline = "middle";
  g.fillText("attention", layout.left - 6, height / 2);
}

function movePlayhead() {
  const head = $("playhead");
  const layout = state.layout;
  const player = $("player");
  if (!layout || !state.result) return;
  head.hidden = false;
  head.style.left = `${layout.xOf(Math.min(player.currentTime || 0, layout.span))}px`;
}

function animate() {
  movePlayhead();
  if (!$("player").paused) requestAnimationFrame(animate);
}

function hover(event) {
  const layout = state.layout;
  const result = state.result;
  const tip = $("tooltip");
  if (!layout || !result) return;
  const box = $("taggram").getBoundingClientRect();
  const x = event.clientX - box.left;
  const y = event.clientY - box.top;
  const tag = Math.floor((y - layout.top) / layout.rowHeight);
  const time = ((x - layout.left) / (layout.right - layout.left)) * layout.span;
  const starts = result.taggram.starts;
  let w = -1;
  for (let i = 0; i < starts.length; i++) {
    if (time >= starts[i] && time < starts[i] + result.window_seconds) w = i;
  }
  if (tag < 0 || tag >= layout.tags || w < 0 || x > layout.right) {
    tip.hidden = true;
    return;
  }
  const end = Math.min(starts[w] + result.window_seconds, result.duration);
  tip.textContent = `${result.tags[tag]} · ${clock(starts[w])}–${clock(end)} · ` +
    `${result.taggram.scores[w][tag].toFixed(3)}`;
  tip.hidden = false;
  const left = Math.min(x + 14, box.width - tip.offsetWidth - 4);
  tip.style.left = `${Math.max(0, left)}px`;
  tip.style.top = `${Math.max(0, y - 30)}px`;
}

function seek(event) {
  const layout = state.layout;
  if (!layout) return;
  const box = $("taggram").getBoundingClientRect();
  const time = ((event.clientX - box.left - layout.left) / (layout.right - layout.left))
    * layout.span;
  const player = $("player");
  if (time >= 0 && Number.isFinite(player.duration)) {
    player.currentTime = Math.min(time, player.duration);
    movePlayhead();
  }
}

function setUp() {
  const drop = $("drop");
  $("file").addEventListener("change", (event) => tagFile(event.target.files[0]));
  $("model").addEventListener("change", describeModel);
  for (const name of ["dragenter", "dragover"]) {
    document.addEventListener(name, (event) => {
      event.preventDefault();
      drop.classList.add("over");
    });
  }
  for (const name of ["dragleave", "drop"]) {
    document.addEventListener(name, (event) => {
      event.preventDefault();
      if (name === "drop" || event.target === document.documentElement) {
        drop.classList.remove("over");
      }
    });
  }
  document.addEventListener("drop", (event) => {
    const file = event.dataTransfer && event.dataTransfer.files[0];
    if (file) tagFile(file);
  });
  const player = $("player");
  player.addEventListener("play", () => requestAnimationFrame(animate));
  player.addEventListener("timeupdate", movePlayhead);
  player.addEventListener("seeked", movePlayhead);
  $("taggram").addEventListener("mousemove", hover);
  $("taggram").addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  $("taggram").addEventListener("click", seek);
  let pending = null;
  window.addEventListener("resize", () => {
    clearTimeout(pending);
    pending = setTimeout(draw, 100);
  });
  loadModels();
}

document.addEventListener("DOMContentLoaded", setUp);
