// curate review page: keyboard-first review of one identity block at a time.
// Every decision is shown only after the server has stored it (the tile's data-decision comes from the
// server's answer), so what the page shows is what survives a restart.
"use strict";

const params = new URLSearchParams(location.search);
const TOKEN = params.get("token") || "";
const view = { identities: [], identity: null, block: 1, items: [], pairs: [], cursor: 0, data: null };

async function api(path, body) {
  const options = { headers: { "X-Review-Token": TOKEN } };
  if (body !== undefined) {
    options.method = "POST";
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const answer = await response.json();
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

function reviewer() { return document.getElementById("reviewer").value.trim(); }
function el(tag, attrs, text) {
  const node = document.createElement(tag);
  Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
  if (text !== undefined) node.textContent = text;
  return node;
}
function saved(text) {
  const node = document.getElementById("saved");
  node.textContent = text;
  node.dataset.at = String(Date.now());
}
function img(imageId) { return "img/" + imageId; }

async function loadState() {
  const state = await api("api/state?reviewer=" + encodeURIComponent(reviewer()));
  view.identities = state.identities;
  document.getElementById("overall").textContent =
    `overall ${state.done}/${state.total} · you ${state.done_me}`;
  const nav = document.getElementById("identities");
  nav.replaceChildren();
  for (const identity of state.identities) {
    const row = el("div", { "data-identity": identity.identity_id });
    row.append(el("span", {}, identity.identity_name + " "));
    for (const flag of (identity.flags || "").split(" ").filter(Boolean)) row.append(el("span", { class: "flag" }, flag));
    row.append(el("small", {}, ` ${identity.done}/${identity.images}`));
    const bar = el("div", { class: "bar" });
    const fill = el("span");
    fill.style.width = `${(100 * identity.done) / Math.max(1, identity.images)}%`;
    bar.append(fill);
    row.append(bar);
    if (view.identity && identity.identity_id === view.identity.identity_id) row.classList.add("current");
    row.addEventListener("click", () => openBlock(identity.identity_id, 1, null));
    nav.append(row);
  }
  return state;
}

async function openBlock(identityId, block, imageId) {
  const data = await api(`api/block?identity=${encodeURIComponent(identityId)}&block=${block}` +
    `&reviewer=${encodeURIComponent(reviewer())}`);
  view.data = data;
  view.identity = data.identity;
  view.block = data.block;
  view.items = data.items;
  view.pairs = data.pairs;
  const at = view.items.findIndex((item) => item.image_id === imageId);
  view.cursor = at >= 0 ? at : Math.max(0, view.items.findIndex((item) => !item.decision));
  render();
  savePosition();
  loadState();
}

function render() {
  const identity = view.identity;
  document.getElementById("identity-name").textContent = identity.identity_name;
  const flags = document.getElementById("identity-flags");
  flags.replaceChildren();
  for (const flag of (identity.flags || "").split(" ").filter(Boolean)) flags.append(el("span", { class: "flag" }, flag));
  if (identity.identity_purity !== null) flags.append(el("span", {}, ` purity ${identity.identity_purity.toFixed(2)}`));
  if (identity.overlap_with) flags.append(el("span", {}, ` twin: ${identity.overlap_with}`));
  document.getElementById("merge-button").disabled = !identity.twin_ids;
  document.getElementById("block-label").textContent = `block ${view.block} of ${identity.blocks}`;
  const verdict = view.data.verdict;
  document.getElementById("verdict").textContent = verdict ? verdict.decision.replace("identity_", "") : "";
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  view.items.forEach((item, index) => grid.append(tile(item, index)));
  renderPairs();
  moveCursor(view.cursor);
  document.querySelectorAll("#identities div[data-identity]").forEach((row) =>
    row.classList.toggle("current", row.dataset.identity === identity.identity_id));
}

function tile(item, index) {
  const node = el("div", { class: "tile", "data-image-id": item.image_id, "data-index": String(index) });
  if (item.decision) node.dataset.decision = item.decision;
  const picture = el("img", { src: img(item.image_id), alt: item.image_id.slice(0, 12) });
  node.append(picture);
  const score = item.rank_score === null ? "–" : item.rank_score.toFixed(3);
  node.append(el("div", {}, `#${item.position} score ${score} ${item.status === "ok" ? "" : item.status}`));
  if (item.flags) node.append(el("div", {}, item.flags));
  node.append(el("div", { class: "why", title: item.why + (item.reason ? "\n" + item.reason : "") }, item.why));
  const others = Object.entries(item.others || {}).map(([who, what]) => `${who}: ${what}`).join(", ");
  if (others) node.append(el("div", { class: "others" }, others));
  if (item.decision) node.append(el("span", { class: "badge" }, item.decision));
  node.addEventListener("click", () => moveCursor(index));
  return node;
}

function renderPairs() {
  const box = document.getElementById("pairs");
  box.replaceChildren();
  if (view.pairs.length) box.append(el("h3", {}, "possible near-duplicates: choose the keeper"));
  for (const pair of view.pairs) {
    const row = el("div", { class: "pair", "data-pair": pair.pair_id });
    if (pair.choice) row.classList.add("chosen");
    for (const [side, image] of [["left", pair.image_a], ["right", pair.image_b]]) {
      const cell = el("div");
      cell.append(el("img", { src: img(image), alt: side }));
      const keep = el("button", { type: "button" }, `keep ${side}`);
      keep.addEventListener("click", () => choosePair(pair, image));
      cell.append(el("br"), keep);
      row.append(cell);
    }
    const both = el("button", { type: "button" }, "not duplicates: keep both");
    both.addEventListener("click", () => choosePair(pair, null));
    const choice = pair.choice ? (pair.choice.decision === "dup_both" ? "both kept" :
      `kept ${pair.choice.image_id === pair.image_a ? "left" : "right"}`) : "";
    row.append(el("div", {}, `${pair.identity_name_a} / ${pair.identity_name_b}`), both, el("span", {}, choice));
    box.append(row);
  }
}

function moveCursor(index) {
  if (!view.items.length) return;
  view.cursor = Math.max(0, Math.min(view.items.length - 1, index));
  document.querySelectorAll(".tile.cursor").forEach((node) => node.classList.remove("cursor"));
  const node = document.querySelector(`.tile[data-index="${view.cursor}"]`);
  if (node) {
    node.classList.add("cursor");
    node.scrollIntoView({ block: "nearest" });
  }
  const item = view.items[view.cursor];
  document.getElementById("cursor-info").textContent = `#${item.position}: ${item.why}`;
  clearTimeout(moveCursor.timer);
  moveCursor.timer = setTimeout(savePosition, 300);
}

function savePosition() {
  if (!reviewer() || !view.identity) return;
  const item = view.items[view.cursor];
  api("api/position", { reviewer: reviewer(), identity_id: view.identity.identity_id, block: view.block,
    image_id: item ? item.image_id : "" }).catch((error) => saved("not saved: " + error.message));
}

function needReviewer() {
  if (reviewer()) return false;
  saved("type your name first");
  document.getElementById("reviewer").focus();
  return true;
}

async function decide(indexes, decision) {
  if (needReviewer() || !indexes.length) return;
  const decisions = indexes.map((i) => ({ image_id: view.items[i].image_id, decision }));
  try {
    await api("api/decide", { reviewer: reviewer(), decisions });
  } catch (error) {
    saved("not saved: " + error.message);
    return;
  }
  for (const i of indexes) view.items[i].decision = decision;
  const grid = document.getElementById("grid");
  for (const i of indexes) grid.replaceChild(tile(view.items[i], i), grid.children[i]);
  saved(`saved ${indexes.length} ${decision}`);
  moveCursor(indexes.length === 1 ? indexes[0] + 1 : view.cursor);
  clearTimeout(decide.timer);  // progress counts refresh once the keys pause, not on every key
  decide.timer = setTimeout(loadState, 800);
}

function acceptRest() {
  const rest = view.items.map((item, i) => (item.decision ? -1 : i)).filter((i) => i >= 0);
  decide(rest, "accept");
}

async function undo() {
  if (needReviewer()) return;
  const answer = await api("api/undo", { reviewer: reviewer() });
  saved(`undid ${answer.undone.length}`);
  const current = view.items[view.cursor];
  const undone = answer.undone.find((event) => event.kind === "image");
  await openBlock(view.identity.identity_id, view.block, undone ? undone.image_id : current && current.image_id);
}

async function verdict(decision) {
  if (needReviewer()) return;
  const target = decision === "identity_merge" ? (view.identity.twin_ids || "").split("; ")[0] : "";
  if (decision === "identity_merge" && !target) return saved("no flagged twin to merge with");
  await api("api/identity", { reviewer: reviewer(), identity_id: view.identity.identity_id, decision, target });
  saved(`saved ${decision}`);
  openBlock(view.identity.identity_id, view.block, view.items[view.cursor].image_id);
}

async function choosePair(pair, keeper) {
  if (needReviewer()) return;
  const body = keeper === null ?
    { reviewer: reviewer(), decision: "dup_both", image_id: pair.image_a, target: pair.image_b } :
    { reviewer: reviewer(), decision: "dup_keep", image_id: keeper,
      target: keeper === pair.image_a ? pair.image_b : pair.image_a };
  await api("api/pair", body);
  saved("saved pair");
  openBlock(view.identity.identity_id, view.block, view.items[view.cursor].image_id);
}

function step(direction) {
  const order = view.identities.map((identity) => identity.identity_id);
  let at = order.indexOf(view.identity.identity_id);
  let block = view.block + direction;
  if (block < 1 || block > view.identity.blocks) {
    at += direction;
    if (at < 0 || at >= order.length) return saved(direction > 0 ? "last block" : "first block");
    block = direction > 0 ? 1 : view.identities[at].blocks;
  }
  openBlock(order[at], block, null);
}

function columns() {
  const tiles = [...document.querySelectorAll(".tile")];
  if (!tiles.length) return 1;
  const top = tiles[0].offsetTop;
  return Math.max(1, tiles.filter((node) => node.offsetTop === top).length);
}

function firstOpenPair() { return view.pairs.find((pair) => !pair.choice); }

const KEYS = {
  ArrowRight: () => moveCursor(view.cursor + 1), l: () => moveCursor(view.cursor + 1),
  ArrowLeft: () => moveCursor(view.cursor - 1), h: () => moveCursor(view.cursor - 1),
  ArrowDown: () => moveCursor(view.cursor + columns()), j: () => moveCursor(view.cursor + columns()),
  ArrowUp: () => moveCursor(view.cursor - columns()), k: () => moveCursor(view.cursor - columns()),
  a: () => decide([view.cursor], "accept"),
  r: () => decide([view.cursor], "reject"), x: () => decide([view.cursor], "reject"),
  w: () => decide([view.cursor], "wrong_identity"),
  s: () => decide([view.cursor], "unsure"), "?": () => decide([view.cursor], "unsure"),
  A: acceptRest, n: () => step(1), PageDown: () => step(1), p: () => step(-1), PageUp: () => step(-1),
  z: undo, K: () => verdict("identity_keep"), D: () => verdict("identity_drop"), M: () => verdict("identity_merge"),
  1: () => { const p = firstOpenPair(); if (p) choosePair(p, p.image_a); },
  2: () => { const p = firstOpenPair(); if (p) choosePair(p, p.image_b); },
  3: () => { const p = firstOpenPair(); if (p) choosePair(p, null); },
};

document.addEventListener("keydown", (event) => {
  if (event.target.tagName === "INPUT" || event.ctrlKey || event.metaKey || event.altKey) {
    if (event.key === "z" && event.ctrlKey) { event.preventDefault(); undo(); }
    return;
  }
  const action = KEYS[event.key];
  if (action && view.identity) {
    event.preventDefault();
    action();
  }
});

document.querySelectorAll("[data-decide]").forEach((button) =>
  button.addEventListener("click", () => decide([view.cursor], button.dataset.decide)));
document.querySelectorAll("[data-verdict]").forEach((button) =>
  button.addEventListener("click", () => verdict(button.dataset.verdict)));
document.querySelectorAll("[data-nav]").forEach((button) =>
  button.addEventListener("click", () => step(button.dataset.nav === "next" ? 1 : -1)));
document.getElementById("accept-rest").addEventListener("click", acceptRest);
document.getElementById("undo").addEventListener("click", undo);
document.getElementById("show-help").addEventListener("click", () => {
  const help = document.getElementById("help");
  help.hidden = !help.hidden;
});
document.getElementById("show-agreement").addEventListener("click", async () => {
  const box = document.getElementById("agreement");
  box.hidden = !box.hidden;
  if (box.hidden) return;
  const answer = await api("api/agreement");
  const table = el("table");
  table.append(el("tr", {}, ""));
  table.firstChild.innerHTML = "<th>identity</th><th>block</th><th>reviewers</th><th>images</th>" +
    "<th>agreement</th><th>Cohen's kappa</th>";
  for (const row of answer.blocks) {
    const line = el("tr");
    for (const value of [row.identity_name, row.block, `${row.reviewer_a} / ${row.reviewer_b}`, row.images,
      row.agreement.toFixed(3), row.kappa === null ? "n/a" : row.kappa.toFixed(3)]) line.append(el("td", {}, String(value)));
    table.append(line);
  }
  box.replaceChildren(el("h3", {}, "agreement between reviewers"), table, el("p", {}, "conflicts: " + answer.rule));
});
document.getElementById("reviewer").addEventListener("change", async () => {
  localStorage.setItem("curate-reviewer", reviewer());
  start();
});

async function start() {
  const state = await loadState();
  if (!state.identities.length) return saved("nothing to review");
  const position = state.position;
  if (position && state.identities.some((identity) => identity.identity_id === position.identity_id)) {
    await openBlock(position.identity_id, position.block, position.image_id);
  } else {
    await openBlock(state.identities[0].identity_id, 1, null);
  }
  document.getElementById("grid").focus();
}

document.getElementById("reviewer").value = params.get("reviewer") || localStorage.getItem("curate-reviewer") || "";
start().catch((error) => saved("error: " + error.message));
