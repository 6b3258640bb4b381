// The dashboard (GET /ui): plain script, no framework, no build step.
//
// The API key is kept in this tab's sessionStorage and sent only in the Authorization
// header: never in a URL. EventSource cannot send a header, so the progress stream
// (GET /v1/bulk-actions/{id}/progress, Server-Sent Events) is read with fetch() and a
// stream reader. Results CSVs are fetched with the header and saved from a blob.
"use strict";

(() => {
  const KEY = "bulkactions.api_key";
  const SAMPLES = "bulkactions.samples.";
  const FINAL = new Set(["COMPLETED", "CANCELLED"]);
  const OUTCOMES = ["succeeded", "failed", "skipped"];
  const COLUMNS = ["id", "entity", "source", "created", "status", "progress", ...OUTCOMES, "total", "rate", "eta"];
  const NUMERIC = new Set([...OUTCOMES, "total", "rate", "eta"]);
  const MAX_STREAMS = 4; // a browser opens at most 6 connections to one server
  const LIST_POLL_MS = 2000; // new actions appear within 2 s (30 requests a minute)
  const ERROR_PAGES = 10; // errors are grouped from the first 10,000 failed records
  const $ = (selector) => document.querySelector(selector);
  const streams = new Map(); // action id -> AbortController
  let current = null;
  let listTimer = null;

  class Unauthorized extends Error {}

  const apiKey = () => sessionStorage.getItem(KEY);
  const sleep = (ms) => new Promise((done) => setTimeout(done, ms));
  const num = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString("en-US"));
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "–");

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "–";
    const s = Math.round(seconds);
    if (s < 60) return `${s} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
    return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  }

  async function api(path, options = {}) {
    const headers = { ...(options.headers || {}), Authorization: `Bearer ${apiKey()}` };
    const response = await fetch(path, { ...options, headers, cache: "no-store" });
    if (response.status === 401) {
      logout("The API key was refused.");
      throw new Unauthorized();
    }
    if (!response.ok) {
      let detail = response.statusText;
      try {
        detail = (await response.json()).detail || detail;
      } catch (ignored) { /* not a problem body */ }
      throw new Error(`${response.status}: ${detail}`);
    }
    return response;
  }

  function notice(text) {
    $("#notice").textContent = text;
    $("#notice").hidden = !text;
  }

  function failed(what) {
    return (error) => {
      if (!(error instanceof Unauthorized) && error.name !== "AbortError") notice(`${what}: ${error.message}`);
    };
  }

  // ------------------------------------------------------------ log in, routes

  async function login(event) {
    event.preventDefault();
    const input = event.target.elements.api_key;
    const candidate = input.value.trim();
    $("#login-error").textContent = "";
    const response = await fetch("/v1/bulk-actions?limit=1", { headers: { Authorization: `Bearer ${candidate}` } });
    if (!response.ok) {
      $("#login-error").textContent = response.status === 401 ? "Unknown API key." : `The server answered ${response.status}.`;
      return;
    }
    sessionStorage.setItem(KEY, candidate);
    input.value = "";
    route();
  }

  function logout(message) {
    sessionStorage.removeItem(KEY);
    stopAll();
    show("login");
    $("#login-error").textContent = message || "";
  }

  function show(name) {
    for (const id of ["login", "list", "detail"]) $(`#${id}`).hidden = id !== name;
    $("#nav").hidden = name === "login";
    current = name;
  }

  function stopAll() {
    clearTimeout(listTimer);
    for (const controller of streams.values()) controller.abort();
    streams.clear();
  }

  function route() {
    stopAll();
    notice("");
    if (!apiKey()) return show("login");
    const match = location.hash.match(/^#\/actions\/([0-9a-f-]{36})$/);
    return match ? openAction(match[1]) : openList();
  }

  // ------------------------------------------------------------ progress stream

  function follow(id, onAction) {
    if (streams.has(id)) return;
    const controller = new AbortController();
    streams.set(id, controller);
    readStream(id, controller.signal, onAction)
      .catch(failed(`Progress of ${id}`))
      .finally(() => streams.get(id) === controller && streams.delete(id));
  }

  async function readStream(id, signal, onAction) {
    while (!signal.aborted) {
      const headers = { Accept: "text/event-stream" };
      const response = await api(`/v1/bulk-actions/${id}/progress`, { signal, headers });
      for await (const event of serverSentEvents(response.body)) {
        onAction(JSON.parse(event.data));
        if (event.type === "final") return;
      }
      await sleep(2000); // the server closed the stream before the end (a restart): again
    }
  }

  async function* serverSentEvents(body) {
    const reader = body.pipeThrough(new TextDecoderStream()).getReader();
    let pending = "";
    let carry = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      let text = carry + value;
      carry = text.endsWith("\r") ? "\r" : ""; // maybe half of a CR LF
      if (carry) text = text.slice(0, -1);
      pending += text.replace(/\r\n?/g, "\n");
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const event = parseEvent(pending.slice(0, end));
        pending = pending.slice(end + 2);
        if (event) yield event;
      }
    }
  }

  function parseEvent(block) {
    let type = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (!line || line.startsWith(":")) continue; // a comment: the keep-alive ping
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    return data.length ? { type, data: data.join("\n") } : null;
  }

  // Counts over time, as this tab saw them (kept for the tab's session), each at the
  // server's time of the last outcome it counts.
  function record(action) {
    const at = action.timings.last_outcome_at;
    const samples = JSON.parse(sessionStorage.getItem(SAMPLES + action.id) || "[]");
    if (!at) return samples;
    const t = Date.parse(at);
    const last = samples[samples.length - 1];
    if (!last || last.t < t || last.processed !== action.counts.processed) {
      samples.push({ t, processed: action.counts.processed, ...pick(action.counts, OUTCOMES) });
      if (samples.length > 500) samples.splice(1, samples.length - 500);
      try {
        sessionStorage.setItem(SAMPLES + action.id, JSON.stringify(samples));
      } catch (full) { /* the tab's storage is full: the chart keeps what it has */ }
    }
    return samples;
  }

  const pick = (object, names) => Object.fromEntries(names.map((name) => [name, object[name]]));

  function facts(action) {
    const running = !FINAL.has(action.status);
    const rate = action.progress.records_per_second;
    return {
      ...Object.fromEntries(Object.entries(action.counts).map(([name, n]) => [name, num(n)])),
      rate: rate === null ? "–" : num(Math.round(rate)),
      eta: running ? duration(action.progress.eta_seconds) : "–",
      elapsed: duration(action.timings.elapsed_seconds),
      percent: action.progress.percent ?? (running ? 0 : 100),
    };
  }

  function statusBadge(status) {
    const badge = document.createElement("span");
    badge.className = `status ${status}`;
    badge.textContent = status;
    return badge;
  }

  function bar() {
    const outer = document.createElement("div");
    outer.className = "bar";
    outer.append(document.createElement("div"));
    return outer;
  }

  // ------------------------------------------------------------ the list

  function openList() {
    show("list");
    refreshList();
  }

  async function refreshList() {
    clearTimeout(listTimer);
    try {
      const page = await (await api("/v1/bulk-actions?limit=50")).json();
      if (current !== "list") return;
      renderList(page.items);
    } catch (error) {
      failed("Could not load the actions")(error);
    }
    if (current === "list") listTimer = setTimeout(refreshList, LIST_POLL_MS);
  }

  function renderList(actions) {
    const body = $("#actions tbody");
    const rows = new Map([...body.rows].map((row) => [row.dataset.id, row]));
    body.replaceChildren(...actions.map((action) => rows.get(action.id) || newRow(action.id)));
    $("#empty").hidden = actions.length > 0;
    for (const action of actions) {
      fillRow(action);
      if (!FINAL.has(action.status) && streams.size < MAX_STREAMS) follow(action.id, fillRow);
    }
  }

  function newRow(id) {
    const row = document.createElement("tr");
    row.dataset.id = id;
    for (const name of COLUMNS) {
      const cell = row.insertCell();
      cell.dataset.field = name;
      if (NUMERIC.has(name)) cell.className = "num";
    }
    const link = document.createElement("a");
    link.href = `#/actions/${id}`;
    link.textContent = id.slice(0, 8);
    const code = document.createElement("code");
    code.append(link);
    row.cells[0].append(code);
    row.cells[COLUMNS.indexOf("progress")].append(bar());
    return row;
  }

  function fillRow(action) {
    const row = $(`#actions tr[data-id="${action.id}"]`);
    if (!row) return;
    record(action);
    const shown = facts(action);
    const cell = (name) => row.cells[COLUMNS.indexOf(name)];
    cell("entity").textContent = `${action.entity} ${action.action}`;
    cell("source").textContent = action.source || "records";
    cell("created").textContent = when(action.timings.created_at);
    cell("status").replaceChildren(statusBadge(action.status));
    cell("progress").querySelector(".bar > div").style.width = `${shown.percent}%`;
    cell("progress").title = `${shown.percent}%`;
    for (const name of [...OUTCOMES, "total", "rate", "eta"]) cell(name).textContent = shown[name];
  }

  // ------------------------------------------------------------ one action

  async function openAction(id) {
    show("detail");
    $("#d-id").textContent = id;
    for (const part of ["#chart", "#errors tbody", "#results"]) $(part).replaceChildren();
    let action;
    try {
      action = await (await api(`/v1/bulk-actions/${id}`)).json();
    } catch (error) {
      return failed(`Could not load action ${id}`)(error);
    }
    const here = () => current === "detail" && $("#d-id").textContent === id;
    showAction(action);
    loadErrors(action).catch(failed("Could not load the errors"));
    if (FINAL.has(action.status)) return undefined;
    return follow(id, (now) => {
      if (!here()) return;
      showAction(now);
      if (FINAL.has(now.status)) loadErrors(now).catch(failed("Could not load the errors"));
    });
  }

  function showAction(action) {
    const samples = record(action);
    const shown = facts(action);
    $("#d-status").replaceWith(Object.assign(statusBadge(action.status), { id: "d-status" }));
    const by = action.match_by ? ` by ${action.match_by}` : "";
    const finished = action.timings.finished_at ? ` · finished ${when(action.timings.finished_at)}` : "";
    $("#d-meta").textContent =
      `${action.entity} ${action.action}${by} · ${action.source || "records"} · created ${when(action.timings.created_at)}${finished}`;
    $("#d-bar").style.width = `${shown.percent}%`;
    for (const dd of document.querySelectorAll("#d-counts dd")) dd.textContent = shown[dd.dataset.field];
    $("#d-discrepancy").hidden = !action.discrepancy;
    $("#d-discrepancy").textContent = action.discrepancy ? `Discrepancy: ${action.discrepancy}` : "";
    drawChart(action, samples);
    renderResults(action);
  }

  function renderResults(action) {
    $("#results").replaceChildren(
      ...OUTCOMES.map((outcome) => {
        const link = document.createElement("a");
        link.href = `/v1/bulk-actions/${action.id}/results/${outcome}.csv`;
        link.download = `${action.id}-${outcome}.csv`;
        link.dataset.outcome = outcome;
        link.textContent = `${outcome}.csv (${num(action.counts[outcome])})`;
        link.addEventListener("click", download);
        const item = document.createElement("li");
        item.append(link);
        return item;
      }),
    );
  }

  async function download(event) {
    event.preventDefault();
    const link = event.currentTarget;
    try {
      const blob = await (await api(link.getAttribute("href"))).blob();
      const url = URL.createObjectURL(blob);
      const save = Object.assign(document.createElement("a"), { href: url, download: link.download });
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000);
    } catch (error) {
      failed(`Could not download ${link.download}`)(error);
    }
  }

  async function loadErrors(action) {
    const groups = new Map();
    let seen = 0;
    let cursor = null;
    let pages = 0;
    do {
      const query = new URLSearchParams({ outcome: "failed", limit: "1000" });
      if (cursor) query.set("cursor", cursor);
      const page = await (await api(`/v1/bulk-actions/${action.id}/logs?${query}`)).json();
      for (const line of page.items) {
        seen += 1;
        group(groups, line);
      }
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor && pages < ERROR_PAGES);
    renderErrors(groups);
    const of = `${num(seen)} of ${num(action.counts.failed)}`;
    $("#errors-note").textContent = !seen ? "No failed records." : cursor ? `From the first ${of} failed records.` : `${num(seen)} failed records.`;
  }

  function group(groups, line) {
    const codes = new Set();
    for (const error of line.errors || []) {
      const found = groups.get(error.code) || { count: 0, examples: [] };
      groups.set(error.code, found);
      if (!codes.has(error.code)) found.count += 1;
      codes.add(error.code);
      if (found.examples.length < 3) found.examples.push(`row ${line.row}: ${error.field}: ${error.message}`);
    }
  }

  function renderErrors(groups) {
    const sorted = [...groups.entries()].sort((a, b) => b[1].count - a[1].count);
    $("#errors tbody").replaceChildren(
      ...sorted.map(([code, found]) => {
        const row = document.createElement("tr");
        row.dataset.code = code;
        const examples = document.createElement("ul");
        examples.className = "examples";
        examples.append(...found.examples.map((text) => Object.assign(document.createElement("li"), { textContent: text })));
        row.insertCell().textContent = code;
        Object.assign(row.insertCell(), { className: "num", textContent: num(found.count) });
        row.insertCell().append(examples);
        return row;
      }),
    );
  }

  // ------------------------------------------------------------ the chart

  const SVG = "http://www.w3.org/2000/svg";
  const svg = (name, attributes, text) => {
    const element = document.createElementNS(SVG, name);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
    if (text !== undefined) element.textContent = text;
    return element;
  };

  function drawChart(action, samples) {
    const [width, height, left, right, top, bottom] = [640, 220, 56, 110, 12, 28];
    const start = action.timings.first_outcome_at ? Date.parse(action.timings.first_outcome_at) : null;
    const zero = { t: start, processed: 0, succeeded: 0, failed: 0, skipped: 0 };
    const points = [...(start === null ? [] : [zero]), ...samples.filter((s) => s.t >= start)];
    const chart = $("#chart");
    chart.replaceChildren();
    $("#chart-note").textContent = samples.length > 1
      ? `${samples.length} samples this tab saw, from the first outcome to the last.`
      : "Only the first and the last outcome: the action was not watched while it ran.";
    if (points.length < 2) return;
    const top_ = Math.max(action.counts.total || 0, ...points.map((p) => p.processed), 1);
    const span = Math.max(points[points.length - 1].t - points[0].t, 1);
    const x = (t) => left + ((t - points[0].t) / span) * (width - left - right);
    const y = (n) => height - bottom - (n / top_) * (height - top - bottom);
    chart.append(
      svg("line", { class: "axis", x1: left, y1: height - bottom, x2: width - right, y2: height - bottom }),
      svg("line", { class: "axis", x1: left, y1: top, x2: left, y2: height - bottom }),
      svg("text", { x: left - 6, y: height - bottom, "text-anchor": "end" }, "0"),
      svg("text", { x: left - 6, y: top + 10, "text-anchor": "end" }, num(top_)),
      svg("text", { x: left, y: height - 8 }, "0 s"),
      svg("text", { x: width - right, y: height - 8, "text-anchor": "end" }, duration(span / 1000)),
    );
    ["processed", ...OUTCOMES].forEach((name, i) => {
      const line = points.map((p) => `${x(p.t).toFixed(1)},${y(p[name]).toFixed(1)}`).join(" ");
      chart.append(svg("polyline", { class: name, points: line }));
      chart.append(svg("text", { x: width - right + 10, y: top + 14 + 16 * i, class: name }, name));
    });
  }

  // ------------------------------------------------------------ start

  document.addEventListener("DOMContentLoaded", () => {
    $("#login-form").addEventListener("submit", (event) => login(event).catch(failed("Could not log in")));
    $("#logout").addEventListener("click", () => logout(""));
    window.addEventListener("hashchange", route);
    route();
  });
})();
