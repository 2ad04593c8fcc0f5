// The lookalike search page: plain JS over the JSON API (/api/...), no framework, no build step.
"use strict";

const $ = (id) => document.getElementById(id);
const state = {collections: [], indexTypes: {}, last: null, photo: null, authRequired: false};

// Which query parameter each index exposes on the slider, and its range (max may come from build params).
const SLIDERS = {
  nprobe: (p) => ({min: 1, max: p.nlist || 64}),
  ef: () => ({min: 1, max: 400}),
  n_probes: () => ({min: 1, max: 64}),
};

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const body = response.headers.get("content-type")?.includes("json") ? await response.json() : null;
  if (!response.ok) {
    const error = body?.error || {type: "HTTPError", message: response.statusText};
    throw Object.assign(new Error(error.message), {type: error.type, status: response.status});
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

const ms = (v) => (v === null || v === undefined ? "–" : v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(0)} ms`);
const collection = () => state.collections.find((c) => c.name === $("collection").value);

// ------------------------------------------------------------------------------------------------ set-up
async function init() {
  const [health, collections, types] = await Promise.all([
    api("/api/health"), api("/api/collections"), api("/api/index-types")]);
  state.authRequired = health.auth_required_for_writes;
  $("api-key-box").hidden = !state.authRequired;
  state.collections = collections;
  for (const t of types) state.indexTypes[t.type] = t;
  const select = $("collection");
  select.replaceChildren(...collections.map((c) => el("option", {value: c.name, text: c.name})));
  const preferred = collections.find((c) => c.name === "fashion-mnist") || collections.find((c) => c.embedder);
  if (preferred) select.value = preferred.name;
  $("build-type").replaceChildren(...types.filter((t) => t.type !== "flat")
    .map((t) => el("option", {value: t.type, text: t.type})));
  await selectCollection();
}

async function selectCollection() {
  const c = collection();
  if (!c) { message("No collection in this database yet: ingest a catalog first."); return; }
  $("collection-info").textContent = `${c.count.toLocaleString()} items · ${c.dim}-d ${c.metric}` +
    (c.embedder ? ` · ${c.embedder}` : " · vectors only");
  fillIndexes(c);
  showBuildParams();
  $("gallery").replaceChildren();
  $("stats").hidden = true;
  state.last = null;
  const {facets} = await api(`/api/collections/${encodeURIComponent(c.name)}/facets`);
  $("filters").replaceChildren(...Object.entries(facets).map(([field, values]) =>
    el("label", {}, field.replaceAll("_", " ") + " ",
      el("select", {"data-field": field, "aria-label": `filter ${field}`},
        el("option", {value: "", text: "any"}),
        ...values.map((v) => el("option", {value: v.value, text: `${v.value} (${v.count})`}))))));
  await refreshLog();
}

function fillIndexes(c, keep) {
  const select = $("index");
  const current = keep ? select.value : c.default_index;
  select.replaceChildren(...c.indexes.map((i) => el("option", {value: i.name, text: i.name})));
  select.value = c.indexes.some((i) => i.name === current) ? current : c.default_index;
  showSlider();
}

function showSlider() {
  const c = collection();
  const info = c?.indexes.find((i) => i.name === $("index").value);
  const queryParams = state.indexTypes[info?.type]?.query_params || {};
  const name = Object.keys(queryParams).find((p) => p in SLIDERS);
  $("param-box").hidden = !name;
  if (!name) return;
  const range = SLIDERS[name](info.params);
  const slider = $("param");
  slider.min = range.min;
  slider.max = range.max;
  slider.value = Math.min(range.max, Math.max(range.min, queryParams[name]));
  slider.dataset.name = name;
  slider.dataset.touched = "";  // until moved, the server picks the value tuned for the query's mode
  $("param-name").textContent = name;
  $("param-value").textContent = "auto";
}

// ---------------------------------------------------------------------------------------------- searching
function where() {
  const clauses = [...$("filters").querySelectorAll("select")]
    .filter((s) => s.value).map((s) => ({[s.dataset.field]: s.value}));
  return clauses.length === 0 ? null : clauses.length === 1 ? clauses[0] : {$and: clauses};
}

function settings() {
  const params = {};
  if (!$("param-box").hidden && $("param").dataset.touched) params[$("param").dataset.name] = Number($("param").value);
  return {k: Math.max(1, Math.min(1000, Number($("k").value) || 10)), index: $("index").value, params,
          where: where(), with_recall: $("with-recall").checked};
}

async function search(query) {
  const c = collection();
  if (!c) return;
  state.last = query;
  const base = `/api/collections/${encodeURIComponent(c.name)}/search`;
  const s = settings();
  let request;
  if (query.photo) {
    const form = new FormData();
    form.append("file", query.photo);
    for (const [name, value] of Object.entries(s)) {
      if (value !== null) form.append(name, typeof value === "object" ? JSON.stringify(value) : String(value));
    }
    form.append("crop", String($("crop").checked));
    request = api(`${base}/image`, {method: "POST", body: form});
  } else {
    request = api(base, {method: "POST", headers: {"Content-Type": "application/json"},
                         body: JSON.stringify({...s, ...query})});
  }
  $("gallery").classList.add("loading");
  try {
    show(await request, s);
    message(null);
  } catch (error) {
    message(`${error.type}: ${error.message}`);
  } finally {
    $("gallery").classList.remove("loading");
  }
  refreshLog();
}

function show(answer, s) {
  $("empty").hidden = true;
  $("stats").hidden = false;
  $("stat-k").textContent = answer.k;
  $("recall").textContent = answer.recall === null ? "–" : answer.recall.toFixed(2);
  $("recall").className = answer.recall === null ? "" : answer.recall >= 0.95 ? "good" : answer.recall >= 0.7 ? "fair" : "poor";
  $("lat-embed").textContent = ms(answer.latency_ms.embed);
  $("lat-search").textContent = ms(answer.latency_ms.search);
  $("lat-exact").textContent = ms(answer.latency_ms.exact);
  const used = answer.params || s.params;  // what the index used: the slider's value, or the mode's tuned one
  const shownParams = Object.entries(used).map(([n, v]) => `${n}=${v}`).join(", ") +
    (Object.keys(s.params).length === 0 && Object.keys(used).length ? ` · tuned for ${answer.mode}` : "");
  if (!$("param").dataset.touched && used[$("param").dataset.name] !== undefined) {
    $("param").value = used[$("param").dataset.name];
    $("param-value").textContent = `auto (${used[$("param").dataset.name]})`;
  }
  $("stat-index").textContent = `${answer.index}${shownParams ? ` (${shownParams})` : ""}` +
    (answer.crop?.box ? ` · cropped with ${answer.crop.method}` : "");
  showReading(answer.understood);
  $("gallery").replaceChildren(...answer.hits.map(card));
  if (answer.hits.length === 0) message("No item matches these filters.");
}

// How the text was read: the garment, what it says of lightness, pattern and shape, and what the pictures cannot show.
function showReading(understood) {
  const description = understood?.description || {};
  const said = Object.entries(description).filter(([name]) => name !== "notes")
    .map(([name, d]) => `${name}: ${d.value}${d.words ? ` ("${d.words}")` : ""}`);
  const notes = description.notes || [];
  $("reading").hidden = !understood;
  if (!understood) return;
  $("reading").replaceChildren(
    el("span", {text: `Read as: ${understood.class || "no garment class"}${said.length ? " · " + said.join(" · ") : ""}`}),
    ...notes.map((note) => el("div", {class: "note", text: `Note: ${note}`})));
}

function card(hit) {
  const m = hit.metadata || {};
  const label = m.class || m.product_type_name || m.product_group_name || "";
  const picture = hit.image_url
    ? el("img", {src: `${hit.image_url}${hit.image_url.includes("?") ? "&" : "?"}size=224`, alt: m.name || String(hit.id), loading: "lazy"})
    : el("div", {class: "no-image", text: String(hit.id)});
  const mark = hit.true_knn === null ? "" : hit.true_knn
    ? el("span", {class: "knn yes", title: "one of the exact k nearest", text: "✓ true KNN"})
    : el("span", {class: "knn no", title: "not among the exact k nearest: the index missed a closer item", text: "✗ approx"});
  const node = el("figure", {class: "card", tabindex: "0", title: "click: more like this"}, picture,
    el("figcaption", {},
      el("div", {class: "name", text: m.name || m.prod_name || String(hit.id)}),
      el("div", {class: "meta"}, el("span", {class: "label", text: label}), mark),
      el("div", {class: "score"}, el("span", {class: "bar"}), el("span", {text: hit.score.toFixed(3)}))));
  node.querySelector(".bar").style.width = `${Math.max(0, Math.min(1, hit.score)) * 100}%`;
  const again = () => search({like_id: hit.id});
  node.addEventListener("click", again);
  node.addEventListener("keydown", (e) => e.key === "Enter" && again());
  return node;
}

function message(text) {
  $("message").hidden = !text;
  $("message").textContent = text || "";
}

// ------------------------------------------------------------------------------------------------- photos
function usePhoto(file) {
  if (!file || !file.type.startsWith("image/")) { message("That file is not an image."); return; }
  state.photo = file;
  const preview = $("photo-preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-text").textContent = `${file.name} — drop another to replace`;
  $("q").value = "";
  search({photo: file});
}

function wireDrop() {
  const drop = $("drop");
  drop.addEventListener("click", (e) => { if (!e.target.closest(".crop")) $("file").click(); });
  drop.addEventListener("keydown", (e) => e.key === "Enter" && $("file").click());
  $("file").addEventListener("change", () => usePhoto($("file").files[0]));
  for (const type of ["dragenter", "dragover"]) {
    drop.addEventListener(type, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    usePhoto(e.dataTransfer.files[0]);
  });
}

// --------------------------------------------------------------------------------------------- re-indexing
function showBuildParams() {
  const type = state.indexTypes[$("build-type").value];
  // start from the parameters the collection's index of this type was built with, else the type's defaults
  const built = collection()?.indexes.find((i) => i.type === type?.type)?.params || {};
  const inputs = Object.entries({...type?.build_params, ...built})
    .filter(([, value]) => typeof value === "number")
    .map(([name, value]) => el("label", {}, name, el("input", {type: "number", name, value: String(value), "data-param": name})));
  $("build-params").replaceChildren(...inputs);
}

async function build(event) {
  event.preventDefault();
  const c = collection();
  const params = {};
  for (const input of $("build-params").querySelectorAll("input")) params[input.dataset.param] = Number(input.value);
  const headers = {"Content-Type": "application/json"};
  if ($("api-key").value) headers["X-API-Key"] = $("api-key").value;
  const path = `/api/collections/${encodeURIComponent(c.name)}/index`;
  $("build-btn").disabled = true;
  try {
    let status = await api(path, {method: "POST", headers, body: JSON.stringify({type: $("build-type").value, params})});
    $("build-status").textContent = `Building ${status.type}… queries keep running.`;
    while (status.state === "building") {
      await new Promise((resolve) => setTimeout(resolve, 400));
      status = await api(path);
    }
    $("build-status").textContent = status.state === "done"
      ? `Built ${status.type} over ${status.count.toLocaleString()} items in ${status.build_s.toFixed(2)} s.`
      : `Build failed: ${status.error?.message}`;
    $("build-status").className = status.state === "done" ? "ok" : "error";
    state.collections = await api("/api/collections");
    fillIndexes(collection(), false);
  } catch (error) {
    $("build-status").textContent = `${error.type}: ${error.message}`;
    $("build-status").className = "error";
  } finally {
    $("build-btn").disabled = false;
  }
}

// ---------------------------------------------------------------------------------------------- query log
async function refreshLog() {
  const c = collection();
  if (!c) return;
  const {queries} = await api(`/api/query-log?limit=12&collection=${encodeURIComponent(c.name)}`);
  $("log-table").tBodies[0].replaceChildren(...queries.reverse().map((q) => el("tr", {},
    el("td", {text: q.time.slice(11, 19)}),
    el("td", {class: "query", title: q.text || q.digest || "", text: q.mode === "text" ? q.text
      : q.mode === "image" ? `photo ${q.digest.slice(0, 8)}` : `${q.mode} ${q.text || q.digest?.slice(0, 8) || ""}`}),
    el("td", {text: q.index_name + Object.entries(q.params || {}).map(([n, v]) => ` ${n}=${v}`).join("")}),
    el("td", {text: q.recall === null ? "–" : q.recall.toFixed(2)}),
    el("td", {text: q.latency_ms < 10 ? q.latency_ms.toFixed(1) : q.latency_ms.toFixed(0)}))));
}

// ------------------------------------------------------------------------------------------------- wiring
document.addEventListener("DOMContentLoaded", () => {
  $("search-form").addEventListener("submit", (e) => {
    e.preventDefault();
    if ($("q").value.trim()) search({text: $("q").value.trim()});
  });
  $("collection").addEventListener("change", selectCollection);
  $("index").addEventListener("change", () => { showSlider(); if (state.last) search(state.last); });
  $("param").addEventListener("input", () => {
    $("param").dataset.touched = "yes";
    $("param-value").textContent = $("param").value;
  });
  for (const id of ["param", "k", "with-recall", "crop"]) {
    $(id).addEventListener("change", () => state.last && search(state.last));
  }
  $("filters").addEventListener("change", () => state.last && search(state.last));
  $("build-type").addEventListener("change", showBuildParams);
  $("build-form").addEventListener("submit", build);
  wireDrop();
  init().catch((error) => message(`Cannot reach the server: ${error.message}`));
});
