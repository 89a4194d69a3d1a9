// The dashboard's script: every page's data from the admin API (fetch, JSON), shown as text.
// Never innerHTML: what vendors stored is user input, set with textContent only.
"use strict";

const TOKEN_KEY = "mockserver-admin-token"; // sessionStorage: this tab only
const PAGE_SIZE = 100; // journal entries a page
const ROWS = 100; // records a state table shows before "show all"

// --- common --------------------------------------------------------------------------------------

class ApiFailure extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(method, path, body) {
  const headers = {};
  if (token()) headers.Authorization = "Bearer " + token();
  const init = { method, headers, cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch (_) {
      data = text;
    }
  }
  if (!response.ok) {
    const message = data && data.error && data.error.message ? data.error.message : response.statusText;
    if (response.status === 401) {
      throw new ApiFailure(401, "This server wants its admin token: enter it above (kept for this tab only).");
    }
    throw new ApiFailure(response.status, response.status + ": " + message);
  }
  return data;
}

function notice(message, isError) {
  const box = document.getElementById("notice");
  box.textContent = message;
  box.className = isError ? "error" : "";
  box.hidden = !message;
}

function failed(error) {
  notice(error instanceof ApiFailure ? error.message : "Error: " + error, true);
  if (error instanceof ApiFailure && error.status === 401) document.getElementById("token").focus();
}

// Runs an async handler, showing its failure instead of leaving it uncaught.
function guarded(handler) {
  return (...args) => Promise.resolve().then(() => handler(...args)).catch(failed);
}

// An element: `attrs` set as properties (dataset and className too), children as text or elements.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "dataset") Object.assign(node.dataset, value);
    else node[key] = value;
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

function pageUrl(page, params) {
  const query = new URLSearchParams(Object.entries(params).filter(([, value]) => value));
  return "/__admin/ui" + page + (query.toString() ? "?" + query : "");
}

function statusClass(status) {
  return /^[1-5]/.test(String(status)) ? "s" + String(status)[0] : "so";
}

// A JSON value as one line of text (cut), for a table cell.
function cellText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") {
    const text = JSON.stringify(value);
    return text.length > 300 ? text.slice(0, 300) + "…" : text;
  }
  return String(value);
}

// A two-step button: the first click asks, the second (within 4 s) does it.
function confirming(label, action) {
  const button = el("button", { type: "button", className: "danger" }, label);
  let timer = null;
  button.addEventListener("click", guarded(async () => {
    if (!button.dataset.armed) {
      button.dataset.armed = "1";
      button.textContent = "Confirm " + label.toLowerCase();
      timer = setTimeout(() => {
        delete button.dataset.armed;
        button.textContent = label;
      }, 4000);
      return;
    }
    clearTimeout(timer);
    delete button.dataset.armed;
    button.textContent = label;
    await action();
  }));
  return button;
}

function fillSelect(select, values, selected) {
  for (const value of values) select.append(el("option", { value }, value));
  if (selected !== undefined && values.includes(selected)) select.value = selected;
}

async function tenantIds() {
  return (await api("GET", "/__admin/tenants")).tenants.map((tenant) => tenant.tenant);
}

async function vendorNames() {
  return (await api("GET", "/__admin/vendors")).vendors.map((vendor) => vendor.name);
}

async function operationIds(vendor) {
  const path = "/__admin/coverage" + (vendor ? "?vendor=" + encodeURIComponent(vendor) : "");
  const report = await api("GET", path);
  const names = [];
  for (const each of Object.values(report.vendors)) names.push(...each.operations.map((op) => op.operation));
  return names.sort();
}

function fillDatalist(list, values) {
  list.replaceChildren(...values.map((value) => el("option", { value })));
}

function query() {
  return new URLSearchParams(location.search);
}

function remember(params) {
  history.replaceState(null, "", pageUrl(location.pathname.replace("/__admin/ui", ""), params));
}

// Calls `tick` every `ms` while the tab is visible, never two at once.
function every(ms, tick) {
  let busy = false;
  setInterval(async () => {
    if (busy || document.hidden) return;
    busy = true;
    try {
      await tick();
    } catch (error) {
      failed(error);
    } finally {
      busy = false;
    }
  }, ms);
}

function setupToken() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  input.placeholder = token() ? "(set for this tab)" : "(none)";
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (input.value) sessionStorage.setItem(TOKEN_KEY, input.value);
    else sessionStorage.removeItem(TOKEN_KEY);
    location.reload();
  });
}

// --- tenants -------------------------------------------------------------------------------------

async function tenantsPage() {
  const tbody = document.querySelector("#tenants tbody");
  const filter = document.getElementById("tenant-filter");
  let tenants = [];

  function render() {
    const wanted = filter.value.trim();
    const shown = tenants.filter((tenant) => tenant.tenant.includes(wanted));
    document.getElementById("tenant-count").textContent =
      shown.length > ROWS ? `${ROWS} of ${shown.length} shown` : `${shown.length} tenant${shown.length === 1 ? "" : "s"}`;
    tbody.replaceChildren(...shown.slice(0, ROWS).map((tenant) => {
      const id = tenant.tenant;
      const credentials = el("details", {}, el("summary", {}, Object.keys(tenant.credentials).join(", ")),
        el("pre", {}, JSON.stringify(tenant.credentials, null, 2)));
      const look = el("span", { className: "bar" },
        el("a", { href: pageUrl("/requests", { tenant: id }) }, "log"),
        el("a", { href: pageUrl("/state", { tenant: id }) }, "state"),
        el("a", { href: pageUrl("/webhooks", { tenant: id }) }, "webhooks"),
        el("a", { href: pageUrl("/clock", { tenant: id }) }, "clock"));
      const change = el("span", { className: "bar" },
        confirming("Reset", async () => {
          await api("POST", `/__admin/tenants/${encodeURIComponent(id)}/reset`);
          notice(`Tenant ${id} is back to its seeded data.`);
        }),
        id === "default" ? null : confirming("Delete", async () => {
          await api("DELETE", `/__admin/tenants/${encodeURIComponent(id)}`);
          notice(`Tenant ${id} deleted.`);
          await load();
        }));
      return el("tr", { dataset: { tenant: id } }, el("td", { className: "mono" }, id), el("td", {}, credentials),
        el("td", {}, look), el("td", {}, change));
    }));
  }

  async function load() {
    tenants = (await api("GET", "/__admin/tenants")).tenants;
    render();
  }

  filter.addEventListener("input", render);
  document.getElementById("create-tenant").addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const form = event.target;
    const body = { rate_limits: form.elements.rate_limits.checked };
    if (form.elements.tenant.value.trim()) body.tenant = form.elements.tenant.value.trim();
    const made = await api("POST", "/__admin/tenants", body);
    form.elements.tenant.value = "";
    notice(`Tenant ${made.tenant} created.`);
    await load();
  }));
  await load();
}

// --- request log ---------------------------------------------------------------------------------

async function requestsPage() {
  const form = document.getElementById("log-filters");
  const tbody = document.querySelector("#log tbody");
  const given = query();
  const view = { entries: [], total: 0, more: false, older: false, signature: "", open: null, asked: 0 };

  // The first page is asked for at once, with the filters the address names (the lists come meanwhile).
  const asked = {};
  for (const name of ["tenant", "vendor", "operation", "status"]) if (given.get(name)) asked[name] = given.get(name);
  const first = fetchPage({}, asked);
  first.catch(() => {}); // its failure is shown where it is awaited, below
  const [tenants, vendors] = await Promise.all([tenantIds(), vendorNames()]);
  fillSelect(form.elements.tenant, tenants, given.get("tenant") || "");
  fillSelect(form.elements.vendor, vendors, given.get("vendor") || "");
  form.elements.operation.value = given.get("operation") || "";
  form.elements.status.value = given.get("status") || "";

  function filters() {
    const chosen = {};
    for (const name of ["tenant", "vendor", "operation", "status"]) {
      const value = form.elements[name].value.trim();
      if (value) chosen[name] = value;
    }
    return chosen;
  }

  function fetchPage(extra, chosen = filters()) {
    if (chosen.status && !/^([1-5]xx|[1-5][0-9][0-9])$/i.test(chosen.status)) {
      return Promise.reject(new ApiFailure(400, "status: a status (404) or a class of them (4xx)"));
    }
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), ...chosen, ...extra });
    return api("GET", "/__admin/requests?" + params);
  }

  function render(page) {
    const signature = [page.total, page.requests.length, page.requests.length && page.requests[0].seq,
      page.requests.length && page.requests[page.requests.length - 1].seq].join(":");
    view.entries = page.requests;
    view.total = page.total;
    view.more = page.more;
    if (signature === view.signature) return;
    view.signature = signature;
    const rows = page.requests.slice().reverse().map((entry) => {
      const row = el("tr", { dataset: { seq: String(entry.seq) } },
        el("td", { className: "mono" }, String(entry.seq)),
        el("td", { className: "mono" }, entry.timestamp),
        el("td", {}, entry.tenant === null ? "(none)" : entry.tenant),
        el("td", {}, entry.vendor),
        el("td", { className: "mono" }, entry.method),
        el("td", { className: "mono" }, entry.path + (entry.query ? "?" + entry.query : "")),
        el("td", {}, entry.operation || ""),
        el("td", { className: "status " + statusClass(entry.status) }, String(entry.status)));
      if (view.open === entry.seq) row.classList.add("open");
      row.addEventListener("click", () => openEntry(entry, row));
      return row;
    });
    tbody.replaceChildren(...rows);
    const count = document.getElementById("log-count");
    if (!page.requests.length) count.textContent = `no entries (${page.total} match)`;
    else {
      count.textContent = `#${page.requests[0].seq}–#${page.requests[page.requests.length - 1].seq}: ` +
        `${page.requests.length} of ${page.total} matching` + (view.older ? " (live paused: older entries)" : "");
    }
    document.getElementById("log-older").disabled = !(view.older ? page.more : page.total > page.requests.length);
    document.getElementById("log-newest").disabled = !view.older;
    performance.mark("log-rendered");
  }

  function openEntry(entry, row) {
    view.open = entry.seq;
    for (const other of tbody.querySelectorAll("tr.open")) other.classList.remove("open");
    row.classList.add("open");
    document.getElementById("entry").hidden = false;
    document.getElementById("entry-seq").textContent = "#" + entry.seq;
    document.getElementById("entry-line").textContent =
      `${entry.method} ${entry.path}${entry.query ? "?" + entry.query : ""}`;
    const facts = [["tenant", entry.tenant === null ? "(none: credentials named no tenant)" : entry.tenant],
      ["vendor", entry.vendor], ["operation", entry.operation || "(matched none)"], ["time", entry.timestamp],
      ["truncated", entry.truncated ? "yes: the body is cut at 64 KiB" : "no"]];
    document.getElementById("entry-facts").replaceChildren(
      ...facts.flatMap(([name, value]) => [el("dt", {}, name), el("dd", {}, String(value))]));
    document.querySelector("#entry-headers tbody").replaceChildren(...Object.entries(entry.headers).map(
      ([name, value]) => el("tr", {}, el("td", { className: "mono" }, name), el("td", { className: "mono" }, value))));
    const body = entry.body;
    document.getElementById("entry-body").textContent =
      body === null ? "(none)" : typeof body === "string" ? body : JSON.stringify(body, null, 2);
    const answer = document.getElementById("entry-answer");
    answer.replaceChildren(el("span", { className: "status " + statusClass(entry.status) }, String(entry.status)));
  }

  // Only the answer to the latest question is shown: not a poll's sent before the filters changed.
  async function show(extra) {
    const asked = ++view.asked;
    const page = await fetchPage(extra);
    if (asked === view.asked) render(page);
  }

  async function newest() {
    view.older = false;
    remember(filters());
    await show({});
  }

  form.addEventListener("change", guarded(async () => {
    view.signature = "";
    if (form.elements.vendor.value !== view.vendor) {
      view.vendor = form.elements.vendor.value;
      fillDatalist(document.getElementById("operations"), await operationIds(view.vendor));
    }
    await newest();
  }));
  form.addEventListener("submit", (event) => event.preventDefault());
  document.getElementById("log-newest").addEventListener("click", guarded(newest));
  document.getElementById("log-older").addEventListener("click", guarded(async () => {
    const oldest = view.entries.length ? view.entries[0].seq : undefined;
    if (oldest === undefined) return;
    view.older = true;
    view.signature = "";
    await show({ before: String(oldest) });
  }));
  view.vendor = form.elements.vendor.value;
  const answered = await first;
  if (view.asked === 0) render(answered);
  every(1000, async () => {
    if (!view.older && form.elements.live.checked) await show({});
  });
  fillDatalist(document.getElementById("operations"), await operationIds(view.vendor));
}

// --- tenant state --------------------------------------------------------------------------------

function recordsTable(records, limit) {
  const columns = [];
  for (const record of records.slice(0, limit)) {
    for (const key of Object.keys(record)) if (!columns.includes(key)) columns.push(key);
  }
  return el("table", { className: "grid" },
    el("thead", {}, el("tr", {}, ...columns.map((column) => el("th", {}, column)))),
    el("tbody", {}, ...records.slice(0, limit).map((record) =>
      el("tr", {}, ...columns.map((column) => el("td", {}, cellText(record[column])))))));
}

function collection(name, records) {
  const section = el("section", { dataset: { collection: name } },
    el("h2", {}, `${name} (${records.length})`));
  if (!records.length) {
    section.append(el("p", { className: "muted" }, "none"));
    return section;
  }
  section.append(recordsTable(records, ROWS));
  if (records.length > ROWS) {
    const table = section.lastChild;
    const all = el("button", { type: "button" }, `Show all ${records.length}`);
    all.addEventListener("click", () => {
      table.replaceWith(recordsTable(records, records.length));
      all.remove();
    });
    section.append(all);
  }
  return section;
}

async function statePage() {
  const form = document.getElementById("state-form");
  const given = query();
  const [tenants, vendors] = await Promise.all([tenantIds(), vendorNames()]);
  fillSelect(form.elements.tenant, tenants, given.get("tenant") || "default");
  let vendor = vendors.includes(given.get("vendor")) ? given.get("vendor") : vendors[0];
  let state = null;
  const tabs = document.getElementById("vendor-tabs");

  function render() {
    for (const tab of tabs.children) tab.setAttribute("aria-selected", String(tab.value === vendor));
    remember({ tenant: form.elements.tenant.value, vendor });
    const collections = state[vendor] || {};
    document.getElementById("state").replaceChildren(
      ...Object.entries(collections).map(([name, records]) => collection(name, records)));
  }

  async function load() {
    state = await api("GET", `/__admin/tenants/${encodeURIComponent(form.elements.tenant.value)}/state`);
    render();
  }

  tabs.replaceChildren(...vendors.map((name) => {
    const tab = el("button", { type: "button", value: name }, name);
    tab.setAttribute("role", "tab");
    tab.addEventListener("click", () => {
      vendor = name;
      render();
    });
    return tab;
  }));
  form.elements.tenant.addEventListener("change", guarded(load));
  document.getElementById("state-reload").addEventListener("click", guarded(load));
  await load();
}

// --- webhooks ------------------------------------------------------------------------------------

async function webhooksPage() {
  const form = document.getElementById("webhooks-form");
  const tenants = await tenantIds();
  fillSelect(form.elements.tenant, tenants, query().get("tenant") || "default");

  async function load() {
    const tenant = form.elements.tenant.value;
    remember({ tenant });
    const state = await api("GET", `/__admin/tenants/${encodeURIComponent(tenant)}/state`);
    const sections = [];
    for (const [vendor, collections] of Object.entries(state)) {
      if (!("webhook_deliveries" in collections)) continue;
      const deliveries = collections.webhook_deliveries.slice().reverse();
      const outcomes = {};
      for (const delivery of deliveries) outcomes[delivery.status] = (outcomes[delivery.status] || 0) + 1;
      const summary = Object.entries(outcomes).map(([status, n]) => `${n} ${status}`).join(", ") || "none yet";
      const section = el("section", { dataset: { vendor } }, el("h2", {}, `${vendor}: ${summary}`));
      section.append(deliveries.length ? recordsTable(deliveries, deliveries.length) : el("p", { className: "muted" },
        "No deliveries: the tenant's webhooks have sent nothing."));
      sections.push(section);
    }
    document.getElementById("webhooks").replaceChildren(...sections);
  }

  form.elements.tenant.addEventListener("change", guarded(load));
  document.getElementById("webhooks-reload").addEventListener("click", guarded(load));
  await load();
  every(3000, load);
}

// --- faults --------------------------------------------------------------------------------------

async function faultsPage() {
  const form = document.getElementById("fault-form");
  const tbody = document.querySelector("#faults tbody");
  const [tenants, vendors] = await Promise.all([tenantIds(), vendorNames()]);
  fillSelect(form.elements.vendor, vendors);
  fillSelect(form.elements.tenant, tenants, query().get("tenant") || "");

  async function operations() {
    fillDatalist(document.getElementById("fault-operations"), await operationIds(form.elements.vendor.value));
  }

  async function load() {
    const faults = (await api("GET", "/__admin/faults")).faults;
    tbody.replaceChildren(...faults.map((fault) => el("tr", { dataset: { fault: fault.id } },
      ...["id", "vendor", "operation", "tenant", "kind", "status", "latency_ms", "count", "probability"].map(
        (key) => el("td", {}, cellText(fault[key]))),
      el("td", {}, (() => {
        const clear = el("button", { type: "button" }, "Clear");
        clear.addEventListener("click", guarded(async () => {
          await api("DELETE", `/__admin/faults/${encodeURIComponent(fault.id)}`);
          notice(`Fault ${fault.id} cleared.`);
          await load();
        }));
        return clear;
      })()))));
    if (!faults.length) tbody.append(el("tr", {}, el("td", { colSpan: 10, className: "muted" }, "No fault is armed.")));
  }

  form.elements.vendor.addEventListener("change", guarded(operations));
  form.addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const fields = form.elements;
    const body = { vendor: fields.vendor.value, kind: fields.kind.value };
    if (fields.operation.value.trim()) body.operation = fields.operation.value.trim();
    if (fields.tenant.value) body.tenant = fields.tenant.value;
    if (body.kind === "status") body.status = Number(fields.status.value);
    for (const name of ["latency_ms", "count", "probability"]) {
      if (fields[name].value !== "") body[name] = Number(fields[name].value);
    }
    const fault = await api("POST", "/__admin/faults", body);
    notice(`Fault ${fault.id} armed.`);
    await load();
  }));
  document.querySelector("#faults-clear").replaceWith(confirming("Clear every fault", async () => {
    await api("DELETE", "/__admin/faults");
    notice("Every fault cleared.");
    await load();
  }));
  await load();
  await operations();
  every(2000, load);
}

// --- clocks --------------------------------------------------------------------------------------

async function clockPage() {
  const tbody = document.querySelector("#clocks tbody");
  const wanted = query().get("tenant");
  let tenants = await tenantIds();
  if (wanted && tenants.includes(wanted)) tenants = [wanted, ...tenants.filter((id) => id !== wanted)];
  tenants = tenants.slice(0, ROWS);
  const cells = {};

  async function advance(tenant, body) {
    const answer = await api("POST", `/__admin/tenants/${encodeURIComponent(tenant)}/clock`, body);
    cells[tenant].textContent = answer.now;
    notice(`${tenant}'s clock now reads ${answer.now}.`);
  }

  tbody.replaceChildren(...tenants.map((tenant) => {
    const now = cells[tenant] = el("td", { className: "mono now" }, "…");
    const seconds = el("input", { type: "number", min: "0", value: "60", size: 7 });
    const steps = [["+1 min", 60], ["+1 h", 3600], ["+1 day", 86400]].map(([label, n]) => {
      const button = el("button", { type: "button" }, label);
      button.addEventListener("click", guarded(() => advance(tenant, { advance_seconds: n })));
      return button;
    });
    const by = el("button", { type: "button" }, "Advance");
    by.addEventListener("click", guarded(() => advance(tenant, { advance_seconds: Number(seconds.value) })));
    const to = el("input", { type: "text", size: 22, placeholder: "2026-03-01T09:00:00Z" });
    const set = el("button", { type: "button" }, "Set");
    set.addEventListener("click", guarded(() => advance(tenant, { to: to.value.trim() })));
    return el("tr", { dataset: { tenant } }, el("td", { className: "mono" }, tenant), now,
      el("td", {}, el("span", { className: "bar" }, ...steps, seconds, "s", by)),
      el("td", {}, el("span", { className: "bar" }, to, set)));
  }));

  async function load() {
    const clocks = await Promise.all(tenants.map((tenant) =>
      api("GET", `/__admin/tenants/${encodeURIComponent(tenant)}/clock`)));
    tenants.forEach((tenant, index) => { cells[tenant].textContent = clocks[index].now; });
  }

  document.getElementById("server-clock").addEventListener("submit", guarded(async (event) => {
    event.preventDefault();
    const seconds = Number(event.target.elements.advance_seconds.value);
    const answer = await api("POST", "/__admin/clock", { advance_seconds: seconds });
    for (const [tenant, now] of Object.entries(answer.tenants)) if (cells[tenant]) cells[tenant].textContent = now;
    document.getElementById("server-now").textContent = "server clock: " + answer.now;
    notice(`Every clock moved ${seconds} s.`);
  }));
  await load();
}

// --- chart ---------------------------------------------------------------------------------------

const CHART_KEY = "mockserver-chart";
const CLASSES = ["2", "3", "4", "5", "o"];
const SAMPLE_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;

// Every vendor's answers counted so far, by class of status.
function totals(report) {
  const counted = {};
  for (const [vendor, each] of Object.entries(report.vendors)) {
    const classes = Object.fromEntries(CLASSES.map((key) => [key, 0]));
    const add = (statuses) => {
      for (const [status, n] of Object.entries(statuses)) {
        const key = /^[2-5]/.test(status) ? status[0] : "o";
        classes[key] += n;
      }
    };
    for (const operation of each.operations) {
      add(operation.statuses);
      add(operation.undocumented);
    }
    add(each.unmatched.statuses);
    counted[vendor] = classes;
  }
  return counted;
}

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

function clockTime(ms) {
  return new Date(ms).toTimeString().slice(0, 8);
}

// One vendor's answers a sample interval, stacked by class, over the last WINDOW_MS.
function drawChart(vendor, samples, now) {
  const width = 760, height = 130, left = 36, bottom = 18, slots = WINDOW_MS / SAMPLE_MS;
  const slot = (width - left) / slots;
  const bars = [];
  for (let index = 1; index < samples.length; index++) {
    const before = samples[index - 1].totals[vendor], after = samples[index].totals[vendor];
    if (!before || !after) continue;
    const counts = CLASSES.map((key) => Math.max(0, after[key] - before[key]));
    if (counts.some((n) => n)) bars.push({ at: samples[index].at, counts });
  }
  const highest = Math.max(1, ...bars.map((bar) => bar.counts.reduce((a, b) => a + b, 0)));
  const chart = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `${vendor}: answers by status over the last 5 minutes` });
  chart.append(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }),
    svg("line", { x1: left, y1: 4, x2: left, y2: height - bottom, class: "axis" }),
    svg("text", { x: 2, y: 12 }, String(highest)), svg("text", { x: 2, y: height - bottom }, "0"),
    svg("text", { x: left, y: height - 4 }, clockTime(now - WINDOW_MS)),
    svg("text", { x: width - 50, y: height - 4 }, clockTime(now)));
  const scale = (height - bottom - 8) / highest;
  for (const bar of bars) {
    const x = left + (bar.at - (now - WINDOW_MS)) / SAMPLE_MS * slot - slot;
    if (x < left) continue;
    let y = height - bottom;
    bar.counts.forEach((n, index) => {
      if (!n) return;
      y -= n * scale;
      const rect = svg("rect", { x: x.toFixed(1), y: y.toFixed(1), width: Math.max(1, slot - 1).toFixed(1),
        height: (n * scale).toFixed(1), class: "bar" + CLASSES[index], "data-count": n });
      rect.append(svg("title", {}, `${clockTime(bar.at)}: ${n} × ${CLASSES[index] === "o" ? "other" : CLASSES[index] + "xx"}`));
      chart.append(rect);
    });
  }
  return el("section", { className: "chart", dataset: { vendor } }, el("h2", {}, vendor), chart);
}

async function chartPage() {
  let samples = [];
  try {
    samples = JSON.parse(sessionStorage.getItem(CHART_KEY) || "[]");
  } catch (_) {
    samples = [];
  }

  async function sample() {
    const now = Date.now();
    const counted = totals(await api("GET", "/__admin/coverage"));
    samples = samples.filter((each) => each.at > now - WINDOW_MS - SAMPLE_MS);
    const last = samples[samples.length - 1];
    if (last && now - last.at > 2 * SAMPLE_MS) samples = []; // a gap (the page was closed): counted anew
    samples.push({ at: now, totals: counted });
    sessionStorage.setItem(CHART_KEY, JSON.stringify(samples));
    document.getElementById("charts").replaceChildren(
      ...Object.keys(counted).map((vendor) => drawChart(vendor, samples, now)));
    document.querySelector("#totals tbody").replaceChildren(...Object.entries(counted).map(([vendor, classes]) =>
      el("tr", { dataset: { vendor } }, el("td", {}, vendor),
        ...CLASSES.map((key) => el("td", { className: "s" + key }, String(classes[key]))),
        el("td", {}, String(CLASSES.reduce((sum, key) => sum + classes[key], 0))))));
  }

  await sample();
  every(SAMPLE_MS, sample);
}

// --- start ---------------------------------------------------------------------------------------

const PAGES = { tenants: tenantsPage, requests: requestsPage, state: statePage, webhooks: webhooksPage,
  faults: faultsPage, clock: clockPage, chart: chartPage };

document.addEventListener("DOMContentLoaded", () => {
  setupToken();
  const page = PAGES[document.body.dataset.page];
  if (page) guarded(page)().then(() => { document.body.dataset.ready = "1"; });
});
