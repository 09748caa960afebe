// authlens web view. Every value from the wire is put in the page with
// textContent or as an attribute value through the DOM, never as markup.

const MAX_ROWS = 500; // DOM rows per list at most; filters narrow the rest
const PAGE_ROWS = 100; // rows drawn at first, then as many more each time the list is scrolled to its end
const attempts = new Map(); // id -> summary row
const exchanges = new Map(); // id -> traffic row
let exchangeOrder = []; // ids, oldest first
const legs = new Map(); // exchange id -> the attempt it is a leg of (kept as attempts arrive)
let leftOut = 0; // traffic rows the stream left out (a busy proxy) since the last load
let status = null;
let refreshTimer = null;

// The token came in the URL once; the cookie carries it from now on.
if (location.search) history.replaceState(null, "", location.pathname + location.hash);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

async function getJson(path) {
  const r = await fetch(path, { credentials: "same-origin" });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
  return r.json();
}

const localTime = (iso) => (iso ? new Date(iso).toLocaleString() : "");
const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "");
function ms(n) {
  if (n === null || n === undefined) return "";
  if (n < 1000) return `${n} ms`;
  if (n < 60000) return `${(n / 1000).toFixed(1)} s`;
  const s = Math.round(n / 1000);
  return s % 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s / 60} min`;
}

// === live updates ===

function connect() {
  const live = document.getElementById("live");
  const source = new EventSource("/api/stream");
  source.addEventListener("open", () => { live.textContent = "live"; live.classList.add("on"); });
  source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.classList.remove("on"); });
  source.addEventListener("resync", () => reload());
  source.addEventListener("attempt", (e) => {
    const row = JSON.parse(e.data);
    addAttempt(row);
    if (reloading) reloading.attempts.push(row);
    const cap = status ? status.store.history : 10000;
    for (const id of attempts.keys()) { if (attempts.size <= cap) break; attempts.delete(id); }
    changed("attempt", row.id);
  });
  // The rows that arrived since the last chunk, newest first: at most a
  // few hundred, and how many more the proxy did not send (it was busy).
  source.addEventListener("exchanges", (e) => {
    const batch = JSON.parse(e.data);
    addRows(batch);
    if (reloading) reloading.batches.push(batch);
    changed("exchange");
  });
}

// What the stream brought while a reload's lists were on their way: applied
// again once they are in (the lists may have been made before it).
let reloading = null;

function addRows(batch) {
  for (let i = batch.rows.length - 1; i >= 0; i--) {
    const row = batch.rows[i];
    if (!exchanges.has(row.id)) exchangeOrder.push(row.id);
    exchanges.set(row.id, row);
  }
  const cap = status ? status.store.history : 10000;
  if (exchangeOrder.length > cap) {
    for (const id of exchangeOrder.splice(0, exchangeOrder.length - cap)) { exchanges.delete(id); legs.delete(id); }
  }
  leftOut += batch.left_out;
}

// The sign-ins are drawn as soon as they are in; the traffic, up to the
// history's 10,000 rows, is asked for after them (the proxy answers one
// list at a time), unless the traffic is what is on screen.
async function reload() {
  const mine = { attempts: [], batches: [] };
  reloading = mine;
  try {
    await reloadLists(mine);
  } finally {
    if (reloading === mine) reloading = null;
  }
}

async function reloadLists(mine) {
  const traffic = ["traffic", "exchange"].includes(currentView().name) ? getJson("/api/exchanges") : null;
  if (traffic) traffic.catch(() => {});
  const [list, st] = await Promise.all([getJson("/api/attempts"), getJson("/api/status")]);
  status = st;
  attempts.clear();
  legs.clear();
  for (const a of list.reverse()) addAttempt(a);
  for (const a of mine.attempts) addAttempt(a);
  document.getElementById("nav-faults").hidden = !st.faults;
  footer();
  // A list on screen is redrawn in place (its focus and scroll stay).
  const view = currentView().name;
  if (view === listKind && listBody && document.body.contains(listBody)) redrawList();
  else route();
  const rows = await (traffic || getJson("/api/exchanges"));
  exchanges.clear();
  exchangeOrder = [];
  leftOut = 0;
  for (const r of rows.reverse()) { exchanges.set(r.id, r); exchangeOrder.push(r.id); }
  for (const b of mine.batches) addRows(b);
  footer();
  if (listKind === "traffic") redrawList();
}

function addAttempt(row) {
  attempts.set(row.id, row);
  for (const x of row.exchanges) legs.set(x, row.id);
}

// Coalesces bursts: one redraw per 150 ms at most, and only of what shows
// something that changed (traffic rows do not touch the sign-in list).
const dirty = { attempts: new Set(), traffic: false };
function changed(kind, id) {
  if (kind === "attempt") dirty.attempts.add(String(id));
  else dirty.traffic = true;
  if (refreshTimer) return;
  refreshTimer = setTimeout(() => {
    refreshTimer = null;
    const view = currentView();
    const attemptsChanged = dirty.attempts.size > 0;
    if (view.name === "signins" ? attemptsChanged : view.name === "traffic" && (attemptsChanged || dirty.traffic)) redrawList();
    else if (view.name === "attempt" && dirty.attempts.has(view.id)) route();
    dirty.attempts.clear();
    dirty.traffic = false;
    footer();
  }, 150);
}

function footer() {
  const f = document.getElementById("footer");
  const s = status ? status.store : null;
  f.textContent = `${attempts.size} sign-in(s), ${exchanges.size} exchange(s) kept` +
    (s ? ` (the last ${s.history} of each; older ones are forgotten)` : "") +
    (status && status.show_secrets ? " · --show-secrets: secrets in clear" : " · secrets fingerprinted");
}

// === routing ===

function currentView() {
  const h = location.hash.replace(/^#\/?/, "");
  const [name, id] = h.split("/");
  if (name === "attempt") return { name, id };
  if (name === "exchange") return { name, id };
  if (["traffic", "faults", "setup"].includes(name)) return { name };
  return { name: "signins" };
}

function route() {
  const view = currentView();
  shownView = view;
  for (const a of document.querySelectorAll("nav a")) a.classList.remove("active");
  const nav = { signins: "nav-signins", attempt: "nav-signins", traffic: "nav-traffic", exchange: "nav-traffic", faults: "nav-faults", setup: "nav-setup" }[view.name];
  document.getElementById(nav).classList.add("active");
  const main = document.getElementById("main");
  if (view.name === "signins") showSignins(main);
  else if (view.name === "traffic") showTraffic(main);
  else if (view.name === "attempt") showAttempt(main, view.id);
  else if (view.name === "exchange") showExchange(main, view.id);
  else if (view.name === "faults") showFaults(main);
  else if (view.name === "setup") showSetup(main);
}

// Back from a sign-in or an exchange (Escape, the browser's back, a link)
// to the list it was opened from: the row opened gets the focus again, the
// list drawn as far as it was. Anywhere else the view itself gets it.
const LIST_OF = { attempt: "signins", exchange: "traffic" };
const opened = {}; // list -> { id: the row last opened from it, shown: how many rows it drew }
let shownView = currentView();
window.addEventListener("hashchange", () => {
  const from = shownView;
  const to = currentView();
  if (from.name === listKind && listBody && document.body.contains(listBody)) {
    const row = document.activeElement && document.activeElement.closest("tbody tr[data-id]");
    if (row && listBody.contains(row)) opened[listKind] = { id: row.dataset.id, shown: shownRows };
  }
  const back = LIST_OF[from.name] && opened[to.name];
  returning = back ? { kind: to.name, shown: back.shown } : null;
  route();
  returning = null;
  const row = back && listBody && listBody.querySelector(`tr[data-id="${CSS.escape(back.id)}"]`);
  (row || document.getElementById("main")).focus();
});

// === sign-ins ===

const filters = { status: "", rule: "", host: "", client: "", text: "", oauthOnly: false, trafficText: "" };
let listBody = null;
let listKind = null;
let shownRows = PAGE_ROWS; // rows the list draws now (grows as it is scrolled, back when filtered)
let moreRow = null; // the last row, while more could be drawn: scrolled near, it draws them
let returning = null; // set while going back to a list: how many rows it drew

// A list's body, drawn from its first rows again.
function newList(kind, columns) {
  listBody = el("tbody");
  listKind = kind;
  shownRows = returning && returning.kind === kind ? returning.shown : PAGE_ROWS;
  moreRow = el("tr", { class: "more" }, el("td", { colspan: columns, class: "muted" }, "more rows as you scroll…"));
  const more = new IntersectionObserver((seen) => {
    if (seen.some((e) => e.isIntersecting) && shownRows < MAX_ROWS) { shownRows += PAGE_ROWS; redrawList(); }
  }, { rootMargin: "400px" });
  more.observe(moreRow);
  return listBody;
}

function refilter() {
  shownRows = PAGE_ROWS;
  redrawList();
}

function showSignins(main) {
  const statusSel = el("select", { id: "f-status", "aria-label": "Status", onchange: (e) => { filters.status = e.target.value; refilter(); } },
    el("option", { value: "" }, "any status"), el("option", { value: "failed" }, "failed"),
    el("option", { value: "signed-in" }, "signed in"), el("option", { value: "in-progress" }, "in progress"),
    el("option", { value: "injected" }, "injected fault"));
  statusSel.value = filters.status;
  const input = (id, label, key) => {
    const i = el("input", { id, type: "search", placeholder: label, "aria-label": label, value: filters[key] });
    i.addEventListener("input", () => { filters[key] = i.value; refilter(); });
    return i;
  };
  newList("signins", 10);
  main.replaceChildren(
    el("div", { class: "filters" }, statusSel, input("f-rule", "rule", "rule"), input("f-host", "host", "host"),
      input("f-client", "client_id", "client"), input("f-text", "search (/)", "text"),
      el("span", { id: "count", class: "muted" })),
    el("table", { id: "signins" },
      el("thead", {}, el("tr", {}, ["#", "Status", "Provider / host", "Tenant", "client_id", "User", "Start", "Duration", "Findings", "Rules / IdP codes"].map((h) => el("th", { scope: "col" }, h)))),
      listBody));
  redrawList();
}

function attemptMatches(a) {
  if (filters.status === "injected" ? a.injected.length === 0 : filters.status && a.status !== filters.status) return false;
  if (filters.rule && !a.rules.some((r) => r.includes(filters.rule))) return false;
  if (filters.host && !(a.host || "").includes(filters.host)) return false;
  if (filters.client && !(a.client_id || "").includes(filters.client)) return false;
  if (filters.text) return searchText(a, () => JSON.stringify(a)).includes(filters.text.toLowerCase());
  return true;
}

// What a text filter searches in a row, lower-cased once per row (a row
// that changes comes as a new object), kept on the row under a symbol
// (which JSON and Object.entries leave out).
const SEARCHED = Symbol("searched");
function searchText(row, text) {
  return (row[SEARCHED] ??= text().toLowerCase());
}

// Each row's <tr>, built once per row object (and, for the traffic, per
// sign-in it belongs to): a redraw reuses them, so rows that stay keep
// their DOM nodes, their layout and the keyboard focus.
const built = new WeakMap();
function rowNode(row, key, build) {
  const b = built.get(row);
  if (b && b.key === key) return b.node;
  const node = build();
  built.set(row, { key, node });
  return node;
}

// Makes `body`'s children `nodes`, moving only what differs: rows that
// arrive on top are inserted, rows that leave are removed, the rest stay.
function syncRows(body, nodes) {
  const wanted = new Set(nodes);
  let cur = body.firstChild;
  for (const node of nodes) {
    while (cur && cur !== node && !wanted.has(cur)) { const next = cur.nextSibling; cur.remove(); cur = next; }
    if (cur === node) cur = cur.nextSibling;
    else body.insertBefore(node, cur);
  }
  while (cur) { const next = cur.nextSibling; cur.remove(); cur = next; }
}

function attemptRow(a) {
  const f = a.findings;
  const statusText = a.status === "failed" && a.failed_at ? `failed at ${a.failed_at}` : a.status.replace("-", " ");
  return el("tr", { class: "attempt", "data-id": a.id, tabindex: 0, onclick: () => (location.hash = `#/attempt/${a.id}`),
    onkeydown: (e) => { if (e.key === "Enter") location.hash = `#/attempt/${a.id}`; } },
    el("td", { class: "mono" }, `#${a.id}`),
    el("td", { class: `status-${a.status}` }, statusText, a.injected.map((i) => el("span", { class: "badge injected" }, `injected ${i}`))),
    el("td", {}, a.provider || "", el("br"), el("span", { class: "muted" }, a.host || "")),
    el("td", { class: "mono" }, a.tenant || ""),
    el("td", { class: "mono" }, a.client_id || ""),
    el("td", { class: "mono" }, a.user || ""),
    el("td", {}, clock(a.start)),
    el("td", {}, ms(a.duration_ms)),
    el("td", {}, f.error ? el("span", { class: "sev-error" }, `${f.error} error `) : "",
      f.warning ? el("span", { class: "sev-warning" }, `${f.warning} warning `) : "",
      f.info ? el("span", { class: "sev-info" }, `${f.info} info`) : ""),
    el("td", { class: "mono" }, a.rules.map((r) => el("span", { class: "badge rule" }, r)),
      a.idp_codes.map((c) => el("span", { class: "badge code" }, c))));
}

function redrawList() {
  if (!listBody || !document.body.contains(listBody)) return;
  if (listKind === "signins") {
    const all = [...attempts.values()].sort((x, y) => y.id - x.id).filter(attemptMatches);
    const rows = all.slice(0, shownRows).map((a) => rowNode(a, null, () => attemptRow(a)));
    syncRows(listBody, all.length > shownRows && shownRows < MAX_ROWS ? [...rows, moreRow] : rows);
    document.getElementById("count").textContent = all.length > rows.length
      ? `showing ${rows.length} of ${all.length}: ${rows.length < MAX_ROWS ? "scroll for more, or filter" : "filter"} to narrow` : `${all.length} shown`;
  } else {
    const t = filters.trafficText.toLowerCase();
    const rows = [];
    let more = false;
    for (let i = exchangeOrder.length - 1; i >= 0; i--) {
      const r = exchanges.get(exchangeOrder[i]);
      const attempt = legs.get(r.id) ?? r.attempt;
      if (filters.oauthOnly && !r.oauth && attempt === undefined) continue;
      if (t && !searchText(r, () => `${r.method} ${r.url} ${r.status}`).includes(t)) continue;
      if (rows.length === shownRows) { more = true; break; }
      rows.push(rowNode(r, attempt, () => trafficRow(r, attempt)));
    }
    syncRows(listBody, more && shownRows < MAX_ROWS ? [...rows, moreRow] : rows);
    const count = document.getElementById("count");
    count.replaceChildren(`${rows.length} shown of ${exchanges.size}`);
    if (leftOut > 0) {
      count.append(` · ${leftOut} more arrived faster than the page is sent them `,
        el("button", { type: "button", id: "load-all", onclick: () => reload() }, "load all"));
    }
  }
}

// === traffic ===

function showTraffic(main) {
  const only = el("input", { type: "checkbox", id: "f-oauth", checked: filters.oauthOnly, onchange: (e) => { filters.oauthOnly = e.target.checked; refilter(); } });
  const search = el("input", { id: "f-traffic", type: "search", placeholder: "search URL, method, status", "aria-label": "search traffic", value: filters.trafficText });
  search.addEventListener("input", () => { filters.trafficText = search.value; refilter(); });
  newList("traffic", 8);
  main.replaceChildren(
    el("div", { class: "filters" }, el("label", {}, only, " sign-in legs only"), search, el("span", { id: "count", class: "muted" })),
    el("table", { id: "traffic" },
      el("thead", {}, el("tr", {}, ["#", "Time", "Method", "URL", "Status", "Size", "Time taken", "Sign-in"].map((h) => el("th", { scope: "col" }, h)))),
      listBody));
  redrawList();
}

function trafficRow(r, attempt) {
  const oauth = r.oauth || attempt !== undefined;
  return el("tr", { class: oauth ? "exchange oauth" : "exchange", "data-id": r.id, tabindex: 0,
    onclick: () => (location.hash = `#/exchange/${r.id}`), onkeydown: (e) => { if (e.key === "Enter") location.hash = `#/exchange/${r.id}`; } },
    el("td", { class: "mono" }, r.id), el("td", {}, clock(r.time)), el("td", { class: "mono" }, r.method),
    el("td", { class: "mono" }, r.url, r.intervention ? el("span", { class: "badge injected" }, r.intervention) : "", r.error ? el("div", { class: "sev-error" }, r.error) : ""),
    el("td", {}, r.status ?? "—"), el("td", {}, r.size ?? ""), el("td", {}, ms(r.ms)),
    el("td", {}, attempt !== undefined ? el("a", { href: `#/attempt/${attempt}` }, `#${attempt}`) : ""));
}

// === one sign-in ===

async function showAttempt(main, id) {
  let d;
  try { d = await getJson(`/api/attempts/${encodeURIComponent(id)}`); } catch (e) {
    main.replaceChildren(el("p", {}, `Sign-in #${id} is not (or no longer) kept. `, el("a", { href: "#/" }, "Back to the list")));
    return;
  }
  if (currentView().id !== id) return;
  const s = d.summary;
  const base = `/api/attempts/${s.id}`;
  main.replaceChildren(...[
    el("p", {}, el("a", { href: "#/" }, "← all sign-ins")),
    el("h2", { id: "attempt-title" }, `Sign-in #${s.id}: `, el("span", { class: `status-${s.status}` }, s.status === "failed" && s.failed_at ? `failed at ${s.failed_at}` : s.status.replace("-", " ")),
      s.injected.map((i) => el("span", { class: "badge injected" }, `injected ${i}`))),
    s.summary ? el("p", { id: "verdict" }, s.summary) : null,
    el("dl", { class: "kv" }, ...kv({ provider: s.provider, host: s.host, tenant: s.tenant, client_id: s.client_id, user: s.user, start: localTime(s.start), duration: ms(s.duration_ms) })),
    el("div", { class: "toolbar" }, "Download: ",
      el("a", { href: `${base}/har`, download: `authlens-attempt-${s.id}.har`, id: "dl-har" }, "HAR"),
      el("a", { href: `${base}/report.md`, download: `authlens-attempt-${s.id}.md`, id: "dl-report" }, "Markdown report"),
      el("a", { href: `${base}/events.jsonl`, download: `authlens-attempt-${s.id}.jsonl`, id: "dl-jsonl" }, "JSON lines")),
    el("section", { class: "timeline" }, el("h3", {}, "Timeline"), timeline(d)),
    el("section", { id: "findings" }, el("h3", {}, "Findings"), findings(d)),
    tokens(d),
    el("section", { id: "legs" }, el("h3", {}, "Legs"), ...d.legs.map(leg)),
    el("section", {}, el("details", {}, el("summary", {}, `All ${d.events.length} events (JSON lines)`),
      el("pre", { id: "events" }, d.events.map((e) => JSON.stringify(e)).join("\n")))),
  ].filter(Boolean));
}

function kv(obj) {
  const out = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === null || v === undefined || v === "") continue;
    out.push(el("dt", {}, k), el("dd", { class: "mono" }, typeof v === "object" ? JSON.stringify(v) : String(v)));
  }
  return out;
}

const LEG_NAMES = { authorize: "authorize", code: "code issued", token: "redemption", "token-response": "token response", verdict: "verdict" };

function timeline(d) {
  const events = d.events.filter((e) => e.type !== "finding");
  if (events.length === 0) return el("p", { class: "muted" }, "no legs yet");
  const times = events.map((e) => Date.parse(e.time));
  const code = events.find((e) => e.type === "code" && e.code);
  const life = code && d.code_lifetime_ms ? [Date.parse(code.time), Date.parse(code.time) + d.code_lifetime_ms] : null;
  const t0 = Math.min(...times);
  let t1 = Math.max(...times);
  const redeem = events.find((e) => e.type === "token");
  // A redemption after the code's end puts that end on the axis; otherwise
  // the bar runs off the right edge (the axis stays on the sign-in).
  if (life && t1 >= life[1]) t1 = Math.max(t1, life[1]);
  const span = Math.max(t1 - t0, 1) * 1.05;
  const W = 1000, H = 60 + 22 * events.length, L = 150, R = 40;
  const x = (t) => L + ((t - t0) / span) * (W - L - R);
  const s = svg("svg", { id: "timeline", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": "timeline of the sign-in" });
  s.append(svg("line", { class: "axis", x1: L, x2: W - R, y1: H - 20, y2: H - 20 }));
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (span * i) / 4;
    s.append(svg("text", { x: x(t), y: H - 5, "text-anchor": "middle" }, `+${ms(Math.round(t - t0))}`));
  }
  if (life) {
    const expired = redeem && Date.parse(redeem.time) > life[1];
    const bar = svg("rect", { class: expired ? "life expired" : "life", x: x(life[0]), y: 8, width: Math.max(2, (life[1] > t1 ? W - R : x(life[1])) - x(life[0])), height: H - 36 });
    bar.append(svg("title", {}, `code lifetime ${ms(d.code_lifetime_ms)}`));
    s.append(bar, svg("text", { x: x(life[0]) + 4, y: 20 }, `code valid for ${ms(d.code_lifetime_ms)}${life[1] > t1 ? " (ends beyond the right edge)" : ""}`));
    if (life[1] <= t1) s.append(svg("line", { class: "axis", x1: x(life[1]), x2: x(life[1]), y1: 8, y2: H - 20, "stroke-dasharray": "4 3" }), svg("text", { x: x(life[1]) + 3, y: 34 }, "code expires"));
  }
  events.forEach((e, i) => {
    const y = 44 + i * 22;
    const t = Date.parse(e.time);
    const bad = e.error || e.failed || e.outcome === "failed";
    s.append(svg("text", { x: 4, y: y + 4 }, `${LEG_NAMES[e.type] || e.type} ${clock(e.time)}`));
    const dot = svg("circle", { class: bad ? "bad" : "ok", cx: x(t), cy: y, r: 5 });
    dot.append(svg("title", {}, `${e.type} at ${localTime(e.time)}${e.error ? `: ${e.error}` : ""}`));
    s.append(dot);
  });
  return s;
}

function findings(d) {
  const list = d.events.filter((e) => e.type === "finding");
  if (list.length === 0) return el("p", { class: "muted" }, "none");
  return el("div", {}, ...list.map((f) => el("div", { class: `finding ${f.severity}`, "data-rule": f.rule },
    el("div", {}, el("span", { class: `sev-${f.severity}` }, f.severity), " ", el("code", {}, f.rule), f.field ? ` (${f.field})` : "",
      f.injected ? el("span", { class: "badge injected" }, `injected ${f.injected}`) : ""),
    el("p", { class: "message" }, f.message),
    f.rule === "param-mismatch" || (typeof f.evidence.authorize === "string" && typeof f.evidence.token === "string") ? diff(f.evidence) : null,
    Object.keys(f.evidence || {}).length ? el("details", {}, el("summary", {}, "evidence"), el("dl", { class: "kv" }, ...kv(f.evidence))) : null,
    el("p", { class: "fix" }, el("strong", {}, "Fix: "), f.fix),
    ...explanationsFor(d, f))));
}

function explanationsFor(d, f) {
  if (f.rule !== "idp-error") return [];
  return d.explanations.map((x) => el("div", { class: "explanation" },
    el("h3", {}, `${x.code} (${x.provider}): ${x.meaning}`),
    x.causes.length ? el("div", {}, "Causes:", el("ul", {}, x.causes.map((c) => el("li", {}, c)))) : null,
    x.fix.length ? el("div", {}, "Fix:", el("ul", {}, x.fix.map((c) => el("li", {}, c)))) : null));
}

// Side by side, the characters that differ marked (a character LCS for
// values of reasonable size; common prefix and suffix otherwise).
function diff(evidence) {
  const a = String(evidence.authorize ?? ""), b = String(evidence.token ?? evidence.id_token ?? "");
  const [left, right] = markDiff(a, b);
  return el("div", { class: "diff", "aria-label": "authorize value and token value side by side" },
    el("div", {}, el("h3", {}, "authorize"), el("pre", { class: "diff-authorize" }, ...left)),
    el("div", {}, el("h3", {}, "token"), el("pre", { class: "diff-token" }, ...right)));
}

function markDiff(a, b) {
  const piece = (text, cls) => (cls ? el("mark", { class: cls }, text) : document.createTextNode(text));
  const runs = (ops) => { // [[same|del|add, char]] -> nodes per side
    const L = [], R = [];
    let cur = null, buf = "", side = null;
    const flush = () => { if (buf) (side === "L" ? L : R).push(piece(buf, cur === "same" ? null : cur)); buf = ""; };
    for (const [op, ch, s] of ops) { if (op !== cur || s !== side) { flush(); cur = op; side = s; } buf += ch; }
    flush();
    return [L, R];
  };
  const ops = [];
  if (a.length * b.length <= 400 * 400) {
    const n = a.length, m = b.length, T = Array.from({ length: n + 1 }, () => new Uint16Array(m + 1));
    for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) T[i][j] = a[i] === b[j] ? T[i + 1][j + 1] + 1 : Math.max(T[i + 1][j], T[i][j + 1]);
    const left = [], right = [];
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && a[i] === b[j]) { left.push(["same", a[i], "L"]); right.push(["same", b[j], "R"]); i++; j++; }
      else if (j >= m || (i < n && T[i + 1][j] >= T[i][j + 1])) { left.push(["del", a[i], "L"]); i++; }
      else { right.push(["add", b[j], "R"]); j++; }
    }
    ops.push(...left, ...right);
  } else {
    let p = 0; while (p < a.length && p < b.length && a[p] === b[p]) p++;
    let q = 0; while (q < a.length - p && q < b.length - p && a[a.length - 1 - q] === b[b.length - 1 - q]) q++;
    for (const [s, t, cls] of [["L", a, "del"], ["R", b, "add"]]) {
      ops.push(...[...t.slice(0, p)].map((c) => ["same", c, s]), ...[...t.slice(p, t.length - q)].map((c) => [cls, c, s]), ...[...t.slice(t.length - q)].map((c) => ["same", c, s]));
    }
  }
  return runs(ops);
}

function tokens(d) {
  const decoded = d.events.filter((e) => e.type === "token-response").flatMap((e) => e.decoded_tokens || []);
  if (decoded.length === 0) return null;
  return el("section", { id: "tokens" }, el("h3", {}, "Tokens (decoded, signature not verified)"),
    ...decoded.map((t) => el("div", {}, el("h3", {}, `${t.token} `, el("code", {}, t.fingerprint)),
      t.error ? el("p", { class: "sev-warning" }, t.error) : el("dl", { class: "kv" }, ...kv({
        ...t.header, ...t.claims,
        exp: t.claims && t.claims.exp ? `${localTime(t.claims.exp)} (local time)${Date.parse(t.claims.exp) < Date.now() ? ", expired" : ""}` : null,
        iat: t.claims && t.claims.iat ? `${localTime(t.claims.iat)} (local time)` : null,
        nbf: t.claims && t.claims.nbf ? `${localTime(t.claims.nbf)} (local time)` : null,
      })))));
}

function leg(l) {
  const r = l.row || {};
  const title = `#${l.exchange} ${r.method || ""} ${r.url || ""} → ${r.status ?? "no response"}`;
  if (!l.entry) return el("details", { class: "leg" }, el("summary", {}, title), el("p", { class: "muted" }, "not kept (only sign-in legs are, within the view's memory budget)"));
  return el("details", { class: "leg" }, el("summary", {}, title), entryView(l.entry, l.curl));
}

function entryView(entry, curl) {
  const req = entry.request, resp = entry.response;
  return el("div", {},
    el("h3", {}, "Request"), el("pre", {}, `${req.method} ${req.url}`), headers(req.headers),
    req.postData ? body(req.postData.text, req.postData.mimeType) : null,
    el("h3", {}, `Response ${resp.status} ${resp.statusText}`), headers(resp.headers),
    resp.content && resp.content.text ? body(resp.content.text, resp.content.mimeType, resp.content.encoding) : null,
    curl ? el("div", {}, el("h3", {}, "As curl ", el("button", { type: "button", onclick: (e) => copy(curl, e.target) }, "copy")), el("pre", { class: "curl" }, curl)) : null,
    entry.comment ? el("p", { class: "muted" }, entry.comment) : null);
}

function headers(list) {
  return el("details", {}, el("summary", {}, `${list.length} header(s)`), el("dl", { class: "kv" }, ...list.flatMap((h) => [el("dt", {}, h.name), el("dd", { class: "mono" }, h.value)])));
}

function body(text, mime, encoding) {
  if (encoding === "base64") return el("pre", {}, `(binary, ${text.length} base64 characters)`);
  let shown = text;
  const m = (mime || "").toLowerCase();
  try {
    if (m.includes("json")) shown = JSON.stringify(JSON.parse(text), null, 2);
    else if (m.includes("x-www-form-urlencoded")) shown = [...new URLSearchParams(text)].map(([k, v]) => `${k} = ${v}`).join("\n");
    else if (m.includes("html")) shown = text.replace(/>\s*</g, ">\n<");
  } catch (_) { /* shown as sent */ }
  return el("pre", { class: "body" }, shown);
}

async function copy(text, button) {
  try { await navigator.clipboard.writeText(text); button.textContent = "copied"; } catch (_) { button.textContent = "select and copy"; }
}

async function showExchange(main, id) {
  let d;
  try { d = await getJson(`/api/exchanges/${encodeURIComponent(id)}`); } catch (_) {
    main.replaceChildren(el("p", {}, `Exchange #${id} is not (or no longer) kept. `, el("a", { href: "#/traffic" }, "Back")));
    return;
  }
  const r = d.row;
  main.replaceChildren(el("p", {}, el("a", { href: "#/traffic" }, "← all traffic")),
    el("h2", {}, `#${r.id} ${r.method} `, el("span", { class: "mono" }, r.url)),
    el("dl", { class: "kv" }, ...kv({ status: r.status, time: localTime(r.time), "time taken": ms(r.ms), size: r.size, type: r.type, error: r.error, intervention: r.intervention })),
    d.entry ? entryView(d.entry, d.curl) : el("p", { class: "muted" }, "Headers and bodies are kept for sign-in legs only."));
}

// === faults and setup ===

async function showFaults(main) {
  const st = await getJson("/api/status");
  if (!st.faults) { main.replaceChildren(el("p", {}, "No --fault was given: fault injection is off for this run.")); return; }
  main.replaceChildren(el("h2", {}, "Faults"), el("p", { class: "muted" }, "Switch a fault for the sign-ins that start from now on."),
    el("ul", { id: "faults" }, st.faults.map((f) => el("li", {}, el("label", {},
      el("input", { type: "checkbox", checked: f.on, "data-index": f.index, onchange: async (e) => {
        const r = await fetch("/api/faults", { method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" }, body: JSON.stringify({ index: f.index, on: e.target.checked }) });
        if (!r.ok) { e.target.checked = !e.target.checked; alert(await r.text()); }
      } }), " ", el("code", {}, f.fault))))));
}

async function showSetup(main) {
  const s = await getJson("/api/setup");
  main.replaceChildren(el("h2", {}, "Setup"),
    el("dl", { class: "kv" }, ...kv({ "CA name": s.name, "SHA-256": s.sha256, "valid until": `${localTime(s.not_after)} (local time)`, file: s.path })),
    el("p", {}, "Download the CA: ", el("a", { href: "/api/ca.pem", download: "authlens-ca.pem" }, "PEM"), " · ", el("a", { href: "/api/ca.der", download: "authlens-ca.crt" }, "DER")),
    el("pre", { id: "install-help" }, s.install_help));
}

// === keys ===

document.addEventListener("keydown", (e) => {
  if (e.target.matches("input, select, textarea")) { if (e.key === "Escape") e.target.blur(); return; }
  if (e.key === "/") { const f = document.getElementById("f-text") || document.getElementById("f-traffic"); if (f) { e.preventDefault(); f.focus(); } }
  else if (e.key === "Escape" && ["attempt", "exchange"].includes(currentView().name)) history.back();
  else if (e.key === "j" || e.key === "k") {
    const rows = [...document.querySelectorAll("tbody tr[tabindex]")];
    const i = rows.indexOf(document.activeElement);
    const next = rows[Math.max(0, Math.min(rows.length - 1, i + (e.key === "j" ? 1 : -1)))];
    if (next) next.focus();
  }
});

route();
connect();
