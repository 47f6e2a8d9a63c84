// smartscreen operator review page. Plain JS, no build step. Talks to the API with a bearer token.
"use strict";

const CLASSES = ["baton", "pliers", "hammer", "powerbank", "scissors", "wrench", "gun", "bullet", "sprayer",
  "handcuffs", "knife", "lighter", "lithium_battery", "flammable_liquid", "firecracker"];
const LAYERS = { p: "pseudo", h: "high", l: "low", m: "material" };
const KINDS = { "1": "threat_confirmed", t: "threat_confirmed", "2": "false_alarm", f: "false_alarm",
  "3": "needs_opening", o: "needs_opening" };

const S = {
  token: sessionStorage.getItem("smartscreen.token"),
  account: null, items: [], index: 0, current: null, layer: "pseudo", showBoxes: true,
  zoom: 1, panX: 0, panY: 0, drafts: [], draftClass: "knife", clockSkewNs: 0, busy: false, urls: {},
};
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (S.token) headers.Authorization = "Bearer " + S.token;
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method: options.method || "GET", headers,
    body: options.body !== undefined ? JSON.stringify(options.body) : undefined });
  if (response.status === 401 && path !== "/api/auth/login") { logout(false); throw new Error("session expired"); }
  if (!response.ok) {
    let detail = response.statusText;
    try { const j = await response.json(); detail = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); } catch (e) { /* not JSON */ }
    throw new Error(response.status + ": " + detail);
  }
  return response;
}

function fmtWait(seconds) {
  seconds = Math.max(0, Math.floor(seconds));
  const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60), s = seconds % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${String(s).padStart(2, "0")}s` : `${s}s`;
}
function nowNs() { return BigInt(Date.now()) * 1000000n + BigInt(S.clockSkewNs); }
function waitedS(enteredNs) { return Number(nowNs() - BigInt(enteredNs)) / 1e9; }
function text(tag, content, cls) { const e = document.createElement(tag); e.textContent = content; if (cls) e.className = cls; return e; }

function banner(message, kind) {
  const b = $("banner"); b.textContent = message; b.className = "banner" + (kind ? " " + kind : ""); b.hidden = false;
  clearTimeout(banner.timer);
  banner.timer = setTimeout(() => { b.hidden = true; }, kind === "tip" ? 8000 : 2500);
}

// ---- login --------------------------------------------------------------------------------------
async function login(event) {
  event.preventDefault();
  $("login-error").textContent = "";
  try {
    const r = await api("/api/auth/login", { method: "POST", body: { username: $("username").value, password: $("password").value } });
    const j = await r.json();
    S.token = j.token; sessionStorage.setItem("smartscreen.token", S.token);
    await start();
  } catch (e) { $("login-error").textContent = e.message; }
}
function logout(callApi = true) {
  if (callApi && S.token) api("/api/auth/logout", { method: "POST" }).catch(() => {});
  S.token = null; sessionStorage.removeItem("smartscreen.token");
  $("app").hidden = true; $("login").hidden = false;
}

async function start() {
  const me = await (await api("/api/auth/me")).json();
  S.account = me;
  $("who").textContent = `${me.display_name} (${me.role}, centre ${me.centre_id})`;
  $("login").hidden = true; $("app").hidden = false;
  $("supervise").hidden = me.role === "operator";
  // Take focus off the (now hidden) password field at once: keys pressed while the queue loads
  // are shortcuts, not password characters.
  $("viewer").focus();
  await loadQueue(true);
}

// ---- queue --------------------------------------------------------------------------------------
function queueParams() {
  const p = new URLSearchParams({ status: $("f-status").value });
  if ($("f-line").value) p.append("line", $("f-line").value);
  if ($("f-class").value) p.set("class", $("f-class").value);
  return p;
}

async function loadQueue(openFirst) {
  const page = await (await api("/api/queue?" + queueParams())).json();
  S.clockSkewNs = Number(BigInt(page.server_time_ns) - BigInt(Date.now()) * 1000000n);
  S.items = page.items;
  $("queue-count").textContent = `${page.total} waiting`;
  const lines = new Set([...$("f-line").options].map((o) => o.value));
  for (const item of page.items) if (!lines.has(item.line_id)) { $("f-line").add(new Option(item.line_id, item.line_id)); lines.add(item.line_id); }
  const current = S.current ? S.items.findIndex((i) => i.case_id === S.current.case_id) : -1;
  if (!openFirst && current >= 0) { S.index = current; renderQueue(); return; }  // keep the case, its zoom and boxes
  S.index = openFirst ? 0 : Math.max(0, Math.min(S.index, S.items.length - 1));
  renderQueue();
  if (S.items.length) await openCase(S.index); else showEmpty();
}

async function refreshQueue() {
  if (!S.token || $("app").hidden || S.busy || drag) return;
  try { await loadQueue(false); } catch (e) { banner(e.message, "err"); }
}

function renderQueue() {
  const ol = $("queue"); ol.replaceChildren();
  S.items.forEach((item, i) => {
    const li = document.createElement("li");
    li.dataset.caseId = item.case_id;
    if (i === S.index) li.className = "current";
    li.append(text("span", item.case_id), text("span", fmtWait(waitedS(item.entered_at_ns)), "wait"));
    const classes = item.detected_classes.length ? item.detected_classes.join(", ") : (item.reason_codes.join(", ") || item.route || "");
    li.append(text("span", `${item.line_id} · ${classes}${item.max_score != null ? " " + item.max_score.toFixed(2) : ""}`, "sub"));
    li.addEventListener("click", () => openCase(i));
    ol.append(li);
  });
}

function tickWaits() {
  document.querySelectorAll("#queue li").forEach((li, i) => {
    const item = S.items[i]; if (!item) return;
    const w = waitedS(item.entered_at_ns), span = li.querySelector(".wait");
    span.textContent = fmtWait(w); span.classList.toggle("long", w > 300);
  });
  if (S.current) { const w = $("case-wait"); if (w) w.textContent = "waiting " + fmtWait(waitedS(S.current.timings.entered_at_ns)); }
}

function showEmpty() {
  S.current = null; $("stage").hidden = true; $("empty").hidden = false;
  $("details").replaceChildren(); $("case-head").replaceChildren();
}

// ---- case ---------------------------------------------------------------------------------------
async function openCase(i) {
  if (i < 0 || i >= S.items.length) return;
  S.index = i; renderQueue();
  const id = S.items[i].case_id;
  const c = await (await api("/api/parcels/" + encodeURIComponent(id))).json();
  S.current = c; S.busy = false; S.drafts = []; S.draftClass = c.detections.length ? c.detections[0].class_name : S.draftClass;
  $("tip-box").hidden = true;
  $("stage").hidden = false; $("empty").hidden = true;
  renderHead(); renderDetails(); renderDrafts();
  await loadImages(true);
}

function renderHead() {
  const c = S.current, head = $("case-head"); head.replaceChildren();
  head.append(text("strong", c.case_id), text("span", "line " + c.line_id),
    text("span", "route " + (c.route || "-") + (c.fail_closed ? " (fail-closed)" : "")),
    text("span", c.risk_score != null ? "risk " + c.risk_score.toFixed(2) : "risk -"),
    text("span", "waiting " + fmtWait(waitedS(c.timings.entered_at_ns)), "wait"),
    text("span", "layer: " + S.layer + (S.showBoxes ? " + boxes" : ""), "layer-on"),
    text("span", "new box class: " + S.draftClass));
  head.querySelector(".wait").id = "case-wait";
}

function row(table, k, v) { const tr = document.createElement("tr"); tr.append(text("td", k), text("td", v == null ? "-" : String(v))); table.append(tr); }
function renderDetails() {
  const c = S.current, d = $("details"); d.replaceChildren();
  d.append(text("h3", "Detections"));
  const det = document.createElement("table");
  if (!c.detections.length) row(det, "none", c.detector_error || "");
  for (const x of c.detections) row(det, x.class_name, `${x.score.toFixed(2)} @ ${x.x1.toFixed(0)},${x.y1.toFixed(0)}–${x.x2.toFixed(0)},${x.y2.toFixed(0)}`);
  d.append(det, text("h3", "Risk reasons"));
  const rs = document.createElement("table");
  if (!c.reasons.length) row(rs, "none", "");
  for (const r of c.reasons) row(rs, r.code, `${r.detail} (${r.score.toFixed(2)})`);
  d.append(rs, text("h3", "Waybill"));
  const wb = document.createElement("table");
  if (!c.waybill) row(wb, "waybill", c.tracking_no ? "not found" : "none");
  else {
    const w = c.waybill;
    row(wb, "tracking", w.tracking_no); row(wb, "carrier", w.carrier_code);
    row(wb, "declared", w.declared_items.map((i) => `${i.quantity}× ${i.name}`).join(", "));
    row(wb, "weight g", `${w.declared_weight_g ?? "-"} declared / ${w.measured_weight_g ?? "-"} measured`);
    row(wb, "route", `${w.origin_region_code} → ${w.dest_region_code}`);
    row(wb, "sender", `${w.sender_name} ${w.sender_phone} ${w.sender_address}`);
    row(wb, "recipient", `${w.recipient_name} ${w.recipient_phone} ${w.recipient_address}`);
  }
  d.append(wb, text("h3", "Decision and gate"));
  const g = document.createElement("table");
  row(g, "gate", c.gate_status); row(g, "policy", c.policy_version);
  row(g, "decision latency ms", c.timings.decision_latency_ms != null ? c.timings.decision_latency_ms.toFixed(0) : null);
  row(g, "inference ms", c.timings.inference_ms != null ? c.timings.inference_ms.toFixed(1) : null);
  d.append(g, text("h3", "Verdicts"));
  const v = document.createElement("table"); v.id = "verdicts";
  if (!c.verdicts.length) row(v, "none yet", "");
  for (const x of c.verdicts) row(v, `#${x.seq} ${x.kind}`, `${x.operator_id} ${new Date(Number(BigInt(x.at_ns) / 1000000n)).toLocaleTimeString()}${x.supersedes_seq ? " (corrects #" + x.supersedes_seq + ")" : ""}`);
  d.append(v);
}

async function fetchImage(caseId, layer) {
  const path = `/api/parcels/${encodeURIComponent(caseId)}/images/${layer}.png`;
  return URL.createObjectURL(await (await api(path)).blob());
}

async function loadImages(fit) {
  // a newer request (next case, other layer) supersedes this one: stale images are never shown
  const gen = (S.imageGen = (S.imageGen || 0) + 1), caseId = S.current.case_id;
  const [b, o] = await Promise.all([fetchImage(caseId, S.layer), fetchImage(caseId, "boxes")]);
  if (gen !== S.imageGen) { URL.revokeObjectURL(b); URL.revokeObjectURL(o); return; }
  for (const u of Object.values(S.urls)) URL.revokeObjectURL(u);
  S.urls = { base: b, boxes: o };
  const base = $("img-base"), boxes = $("img-boxes");
  await new Promise((resolve) => { base.onload = resolve; base.onerror = resolve; base.src = b; });
  boxes.src = o; boxes.hidden = !S.showBoxes;
  if (fit) fitView();
  renderHead();
}

// ---- zoom and pan -------------------------------------------------------------------------------
function applyView() { $("stage").style.transform = `translate(${S.panX}px, ${S.panY}px) scale(${S.zoom})`; }
function fitView() {
  const v = $("viewer"), img = $("img-base");
  if (!img.naturalWidth) return;
  S.zoom = Math.min(v.clientWidth / img.naturalWidth, v.clientHeight / img.naturalHeight);
  S.panX = (v.clientWidth - img.naturalWidth * S.zoom) / 2; S.panY = (v.clientHeight - img.naturalHeight * S.zoom) / 2;
  applyView();
}
function zoomBy(factor, cx, cy) {
  const v = $("viewer"); cx = cx ?? v.clientWidth / 2; cy = cy ?? v.clientHeight / 2;
  const z = Math.min(32, Math.max(0.1, S.zoom * factor)), k = z / S.zoom;
  S.panX = cx - (cx - S.panX) * k; S.panY = cy - (cy - S.panY) * k; S.zoom = z; applyView();
}
function toImage(ev) {
  const r = $("viewer").getBoundingClientRect();
  return { x: (ev.clientX - r.left - S.panX) / S.zoom, y: (ev.clientY - r.top - S.panY) / S.zoom };
}

let drag = null;
function onDown(ev) {
  if (!S.current) return;
  $("viewer").focus();
  drag = ev.shiftKey ? { mode: "box", start: toImage(ev), end: toImage(ev) } : { mode: "pan", x: ev.clientX, y: ev.clientY, px: S.panX, py: S.panY };
}
function onMove(ev) {
  if (!drag) return;
  if (drag.mode === "pan") { S.panX = drag.px + ev.clientX - drag.x; S.panY = drag.py + ev.clientY - drag.y; applyView(); }
  else { drag.end = toImage(ev); renderDrafts(drag); }
}
function onUp() {
  if (drag && drag.mode === "box") {
    const img = $("img-base"), a = drag.start, b = drag.end;
    const clamp = (v, hi) => Math.max(0, Math.min(hi, v));
    const box = { class_name: S.draftClass, x1: clamp(Math.min(a.x, b.x), img.naturalWidth), y1: clamp(Math.min(a.y, b.y), img.naturalHeight),
      x2: clamp(Math.max(a.x, b.x), img.naturalWidth), y2: clamp(Math.max(a.y, b.y), img.naturalHeight) };
    if (box.x2 - box.x1 >= 2 && box.y2 - box.y1 >= 2) S.drafts.push(box);
    renderDrafts();
  }
  drag = null;
}
function renderDrafts(active) {
  const layer = $("drafts"); layer.replaceChildren();
  const all = S.drafts.slice();
  if (active && active.mode === "box") all.push({ class_name: S.draftClass, x1: Math.min(active.start.x, active.end.x), y1: Math.min(active.start.y, active.end.y), x2: Math.max(active.start.x, active.end.x), y2: Math.max(active.start.y, active.end.y) });
  for (const b of all) {
    const e = document.createElement("div"); e.className = "draft";
    Object.assign(e.style, { left: b.x1 + "px", top: b.y1 + "px", width: (b.x2 - b.x1) + "px", height: (b.y2 - b.y1) + "px" });
    e.append(text("span", b.class_name)); layer.append(e);
  }
}

// ---- verdicts -----------------------------------------------------------------------------------
async function verdict(kind) {
  if (!S.current || S.busy) return;
  S.busy = true;
  const c = S.current;
  let boxes = S.drafts;
  if (kind === "threat_confirmed" && !boxes.length) boxes = c.detections.map((d) => ({ class_name: d.class_name, x1: d.x1, y1: d.y1, x2: d.x2, y2: d.y2 }));
  const last = c.verdicts.length ? c.verdicts[c.verdicts.length - 1].seq : 0;
  try {
    const r = await (await api(`/api/parcels/${encodeURIComponent(c.case_id)}/verdicts`, { method: "POST",
      body: { kind, boxes, expected_last_seq: c.tip ? null : last } })).json();
    if (r.tip) {
      const [x1, y1, x2, y2] = r.tip.box_xyxy, t = $("tip-box");
      Object.assign(t.style, { left: x1 + "px", top: y1 + "px", width: (x2 - x1) + "px", height: (y2 - y1) + "px" });
      t.hidden = false;
      banner(r.message, "tip");
      await new Promise((resolve) => setTimeout(resolve, 1500));
    } else banner(`${c.case_id}: ${kind.replace("_", " ")} (${r.message})`);
    await loadQueue(false);
  } catch (e) { banner(e.message, "err"); }
  finally { S.busy = false; }
}

// ---- supervisor panel: statistics, TIP settings and detection rates -------------------------------
function table(headers, rows) {
  const t = document.createElement("table"), head = document.createElement("tr");
  for (const h of headers) head.append(text("th", h));
  t.append(head);
  for (const r of rows) { const tr = document.createElement("tr"); for (const c of r) { const td = document.createElement("td"); if (c instanceof Node) td.append(c); else td.textContent = c == null ? "-" : String(c); tr.append(td); } t.append(tr); }
  return t;
}
const ms = (v) => (v == null ? "-" : v.toFixed(0));
const pct = (v) => (v == null ? "-" : (100 * v).toFixed(0) + " %");

async function showPanel() {
  const panel = $("panel");
  if (!panel.hidden) { panel.hidden = true; return; }
  const [lines, ops, tip, report] = await Promise.all(["/api/stats/lines", "/api/stats/operators", "/api/tip/operators", "/api/tip/report"]
    .map(async (p) => (await api(p)).json()));
  const rates = Object.fromEntries(report.map((r) => [r.operator_id, r]));
  panel.replaceChildren(text("h2", "Lines"),
    table(["line", "parcels", "alarms", "pending", "reviewed", "threat", "false alarm", "opening"],
      lines.map((l) => [l.line_id, l.parcels, l.alarms, l.pending_review, l.reviewed, l.threat_confirmed, l.false_alarm, l.needs_opening])),
    text("h2", "Operators"),
    table(["operator", "verdicts", "threat", "false alarm", "opening", "corrections", "median ms", "p90 ms"],
      ops.map((o) => [o.operator_id, o.verdicts, o.threat_confirmed, o.false_alarm, o.needs_opening, o.corrections, ms(o.median_response_ms), ms(o.p90_response_ms)])),
    text("h2", "Threat image projection"),
    table(["operator", "enabled", "probability", "", "projected", "hits", "misses", "detection rate", "median ms", ""],
      tip.map((s) => {
        const enabled = document.createElement("input"); enabled.type = "checkbox"; enabled.checked = s.enabled; enabled.id = "tip-enabled-" + s.username;
        const p = document.createElement("input"); p.type = "number"; p.min = "0"; p.max = "1"; p.step = "0.01"; p.value = String(s.probability); p.id = "tip-p-" + s.username;
        const save = text("button", "Save"); save.type = "button"; save.id = "tip-save-" + s.username;
        save.addEventListener("click", async () => {
          try { await api("/api/tip/operators/" + encodeURIComponent(s.username), { method: "PUT", body: { enabled: enabled.checked, probability: Number(p.value) } }); banner(`TIP for ${s.username} saved`); }
          catch (e) { banner(e.message, "err"); }
        });
        const now = text("button", "Project now"); now.type = "button";
        now.addEventListener("click", async () => {
          try { const r = await (await api(`/api/tip/operators/${encodeURIComponent(s.username)}/project`, { method: "POST", body: {} })).json(); banner(`TIP ${r.threat_class} queued for ${s.username}`); }
          catch (e) { banner(e.message, "err"); }
        });
        const r = rates[s.username] || {};
        return [s.username, enabled, p, save, r.projected ?? 0, r.hits ?? 0, r.misses ?? 0, pct(r.detection_rate), ms(r.median_response_ms), now];
      })));
  panel.hidden = false;
}

// ---- keyboard -----------------------------------------------------------------------------------
function onKey(ev) {
  if ($("app").hidden || ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
  const k = ev.key.length === 1 ? ev.key.toLowerCase() : ev.key;
  if (k in KINDS) verdict(KINDS[k]);
  else if (k === "j" || k === "ArrowRight") openCase(Math.min(S.index + 1, S.items.length - 1));
  else if (k === "k" || k === "ArrowLeft") openCase(Math.max(S.index - 1, 0));
  else if (k in LAYERS) { S.layer = LAYERS[k]; if (S.current) loadImages(false); }
  else if (k === "b") { S.showBoxes = !S.showBoxes; $("img-boxes").hidden = !S.showBoxes; renderHead(); }
  else if (k === "+" || k === "=") zoomBy(1.25);
  else if (k === "-") zoomBy(0.8);
  else if (k === "0") fitView();
  else if (k === "c") { S.draftClass = CLASSES[(CLASSES.indexOf(S.draftClass) + 1) % CLASSES.length]; renderHead(); }
  else if (k === "x") { S.drafts = []; renderDrafts(); }
  else if (k === "s" && S.account && S.account.role !== "operator") showPanel().catch((e) => banner(e.message, "err"));
  else return;
  ev.preventDefault();
}

document.addEventListener("DOMContentLoaded", () => {
  for (const c of CLASSES) $("f-class").add(new Option(c, c));
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout(true));
  $("supervise").addEventListener("click", () => showPanel().catch((e) => banner(e.message, "err")));
  for (const id of ["f-line", "f-class", "f-status"]) $(id).addEventListener("change", () => loadQueue(true).catch((e) => banner(e.message, "err")));
  const v = $("viewer");
  v.addEventListener("mousedown", onDown); window.addEventListener("mousemove", onMove); window.addEventListener("mouseup", onUp);
  v.addEventListener("wheel", (ev) => { ev.preventDefault(); const r = v.getBoundingClientRect(); zoomBy(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top); }, { passive: false });
  document.addEventListener("keydown", onKey);
  window.addEventListener("resize", fitView);
  setInterval(tickWaits, 1000);
  setInterval(refreshQueue, 5000);  // new alarms from the lines join the queue
  if (S.token) start().catch(() => logout(false));
});
