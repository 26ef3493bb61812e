// The operator console: polls /console/api/overview (and /console/api/models less
// often), draws what it gets, and runs the playground against the service's own
// routes (POST /chat/stream, POST /embeddings). Plain DOM, no framework, no build step;
// every value from the service goes in as text, never as markup.
"use strict";

(() => {
  const KEY = "llm-console-key"; // sessionStorage: this tab only
  const REFRESH_MS = Number(document.body.dataset.refreshMs) || 3000;
  const MODELS_EVERY = 5; // overview refreshes per models refresh
  const WINDOW_S = 15 * 60;

  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "text") node.textContent = String(value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function svg(tag, attrs) {
    const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    return node;
  }

  // -- formatting ---------------------------------------------------------------------

  function bytes(n) {
    if (!n) return "0 B";
    const units = ["B", "KB", "MB", "GB", "TB"];
    let i = 0;
    while (n >= 1000 && i < units.length - 1) {
      n /= 1000;
      i += 1;
    }
    return `${n.toFixed(n >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function duration(seconds) {
    const s = Math.floor(seconds);
    const d = Math.floor(s / 86400);
    const h = Math.floor((s % 86400) / 3600);
    const m = Math.floor((s % 3600) / 60);
    if (d) return `${d} d ${h} h`;
    if (h) return `${h} h ${m} min`;
    if (m) return `${m} min ${s % 60} s`;
    return `${s} s`;
  }

  function ms(value) {
    if (value === null || value === undefined) return "-";
    if (value >= 10000) return `${(value / 1000).toFixed(1)} s`;
    if (value >= 1000) return `${(value / 1000).toFixed(2)} s`;
    return `${Math.round(value)} ms`;
  }

  const count = (n) => Number(n || 0).toLocaleString("en");
  const clock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "-");

  // -- access ---------------------------------------------------------------------------

  class NeedKey extends Error {}

  function authHeaders() {
    const key = sessionStorage.getItem(KEY);
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  // fetch with the key; a 401 asks for one (and stops the polling until it is given)
  async function call(path, init = {}) {
    const headers = { ...authHeaders(), ...(init.headers || {}) };
    const response = await fetch(path, { ...init, headers });
    if (response.status === 401) {
      askForKey();
      throw new NeedKey("a key is needed");
    }
    return response;
  }

  function askForKey() {
    const refused = sessionStorage.getItem(KEY) !== null;
    sessionStorage.removeItem(KEY);
    $("key-refused").hidden = !refused;
    $("key-form").hidden = false;
    $("forget-key").hidden = true;
    setStatus("unknown", "key needed");
    $("key-input").focus();
  }

  $("key-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const key = $("key-input").value.trim();
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $("key-input").value = "";
    $("key-form").hidden = true;
    $("forget-key").hidden = false;
    modelsLoaded = false;
    refresh();
  });

  $("forget-key").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    askForKey();
  });

  async function errorText(response) {
    try {
      const body = await response.json();
      if (body && body.detail) return `${body.code || response.status}: ${body.detail}`;
    } catch {
      // not JSON: the status says enough
    }
    return `HTTP ${response.status}`;
  }

  // -- overview -----------------------------------------------------------------------

  function setStatus(status, text) {
    const pill = $("service-status");
    pill.dataset.status = status;
    pill.textContent = text || status;
  }

  function setBanner(text) {
    const banner = $("banner");
    banner.hidden = !text;
    banner.textContent = text || "";
  }

  function renderService(data) {
    const service = data.service;
    setStatus(service.status);
    $("service-version").textContent = service.version;
    $("service-uptime").textContent =
      service.uptime_seconds === null ? "-" : duration(service.uptime_seconds);
    $("updated").textContent = new Date().toLocaleTimeString();
    const notes = [];
    if (service.status === "unhealthy" && service.error) notes.push(service.error);
    if (service.missing_models.length) {
      notes.push(`Key models missing from Ollama: ${service.missing_models.join(", ")}`);
    }
    for (const [section, error] of Object.entries(data.errors || {})) {
      notes.push(`${section}: not shown (${error.code}: ${error.detail})`);
    }
    $("service-error").hidden = !notes.length;
    $("service-error").textContent = notes.join(" · ");
    if (service.default_model) defaults.chat = service.default_model;
  }

  function hostCard(host) {
    const down = host.status !== "up";
    const loaded = new Map(host.loaded.map((m) => [m.name, m]));
    const facts = [
      ["version", host.version || "-"],
      ["response time", host.response_time_ms ? ms(host.response_time_ms) : "-"],
      ["in flight", count(host.in_flight)],
      ["requests", `${count(host.requests)} (${count(host.failures)} failed)`],
    ];
    // why it is down (an up host's last error is a request's, e.g. an unknown model)
    if (down && host.last_error) facts.push(["last error", host.last_error]);
    const models = (host.models || []).map((name) =>
      el("span", { class: loaded.has(name) ? "chip loaded" : "chip", title: name }, name),
    );
    const loadedRows = host.loaded.map((m) =>
      el(
        "li",
        {},
        el("b", { text: m.name }),
        ` ${bytes(m.size_vram)} VRAM of ${bytes(m.size)}`,
        m.expires_at ? `, until ${clock(m.expires_at)}` : "",
      ),
    );
    return el(
      "article",
      { class: down ? "card host down" : "card host", "data-url": host.url },
      el(
        "header",
        {},
        el("span", { class: "url", text: host.url }),
        el("span", { class: "pill", "data-status": host.status, text: host.status }),
      ),
      el("dl", {}, facts.map(([k, v]) => [el("dt", { text: k }), el("dd", { text: v })])),
      el("div", { class: "models" }, host.models === null ? el("span", { class: "muted", text: "models: not known" }) : models.length ? models : el("span", { class: "muted", text: "no models" })),
      loadedRows.length
        ? el("ul", { class: "loaded" }, loadedRows)
        : el("p", { class: "muted", text: "nothing loaded" }),
    );
  }

  function renderHosts(hosts) {
    const box = $("hosts");
    if (!hosts.length) {
      box.replaceChildren(el("p", { class: "muted", text: "no host known" }));
      return;
    }
    box.replaceChildren(...hosts.map(hostCard));
  }

  function renderLanes(lanes) {
    const rows = lanes.map((lane) =>
      el(
        "tr",
        { "data-lane": lane.name },
        el("td", { text: lane.name !== "all" ? lane.name : lanes.length > 1 ? "every other model" : "all generations" }),
        el("td", { class: "num running", text: count(lane.running) }),
        el("td", { class: "num queued", text: count(lane.queued) }),
        el("td", { class: "num", text: count(lane.max_concurrent) }),
        el("td", { class: "num", text: count(lane.max_queue) }),
      ),
    );
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 5, class: "muted", text: "not known" })));
    $("lanes").tBodies[0].replaceChildren(...rows);
  }

  // One chart: bars per 10-second slice over a fixed 15-minute axis ending now. Each
  // series is {value(bucket) -> number or null, cls}; later series are drawn on top.
  function drawChart(id, history, now, series, format, current) {
    const figure = $(id);
    const W = 300;
    const H = 80;
    const values = series.flatMap((s) => history.map(s.value)).filter((v) => v !== null);
    const peak = Math.max(...values, 0);
    const top = peak || 1;
    const chart = svg("svg", {
      viewBox: `0 0 ${W} ${H}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": figure.querySelector("figcaption").textContent,
    });
    chart.append(svg("line", { x1: 0, y1: H - 0.5, x2: W, y2: H - 0.5, class: "axis" }));
    for (const s of series) {
      for (const bucket of history) {
        const value = s.value(bucket);
        if (value === null || value <= 0) continue;
        const start = Date.parse(bucket.start) / 1000;
        const x = ((start - (now - WINDOW_S)) / WINDOW_S) * W;
        const width = (bucket.seconds / WINDOW_S) * W * 0.85;
        const height = Math.max(1, (value / top) * (H - 4));
        if (x + width < 0) continue;
        chart.append(
          svg("rect", {
            x: x.toFixed(2),
            y: (H - height).toFixed(2),
            width: width.toFixed(2),
            height: height.toFixed(2),
            class: s.cls,
          }),
        );
      }
    }
    const scale = el("div", { class: "muted scale" }, `max ${format(peak)} · 15 min`);
    const last = history.length ? history[history.length - 1] : null;
    figure.querySelector(".now").textContent = last ? current(last) : "-";
    figure.replaceChildren(figure.querySelector("figcaption"), chart, scale);
  }

  function renderHistory(data) {
    const history = data.history || [];
    const now = data.timestamp ? Date.parse(data.timestamp) / 1000 : Date.now() / 1000;
    const rate = (b) => b.requests / Math.max(1, b.elapsed_seconds || b.seconds);
    const errors = (b) => (b.requests ? (100 * b.failures) / b.requests : null);
    const served = (b) => b.requests - b.failures - b.cancelled > 0;
    const p50 = (b) => (served(b) ? b.p50_latency_ms : null);
    const p95 = (b) => (served(b) ? b.p95_latency_ms : null);
    const perSecond = (v) => `${v.toFixed(v < 10 ? 2 : 0)}/s`;
    const percent = (v) => `${v.toFixed(v < 10 ? 1 : 0)}%`;
    const or = (v, format) => (v === null ? "-" : format(v));
    drawChart("chart-rps", history, now, [{ value: rate, cls: "bar" }], perSecond, (b) =>
      perSecond(rate(b)),
    );
    drawChart("chart-errors", history, now, [{ value: errors, cls: "bar bad" }], percent, (b) =>
      or(errors(b), percent),
    );
    drawChart(
      "chart-latency",
      history,
      now,
      [
        { value: p95, cls: "bar second" },
        { value: p50, cls: "bar" },
      ],
      ms,
      (b) => `${or(p50(b), ms)} / ${or(p95(b), ms)}`,
    );
    const t = data.totals;
    $("totals").textContent = t
      ? `Since start: ${count(t.requests)} requests, ${count(t.failures)} failed, ` +
        `${count(t.cancelled)} cancelled, ${count(t.prompt_tokens + t.response_tokens)} tokens, ` +
        `${count(t.retries)} moved to another host.`
      : "";
  }

  function renderFailures(failures) {
    const rows = failures.map((f) =>
      el(
        "tr",
        {},
        el("td", { text: clock(f.time), title: f.time }),
        el("td", {}, el("b", { text: f.code }), " ", el("span", { class: "muted", text: f.status })),
        el("td", { text: f.model || "-" }),
        el("td", { text: f.host || "-" }),
        el("td", { text: f.method }),
        el("td", { class: "num", text: ms(f.duration_ms) }),
        el("td", { class: "mono", text: f.request_id }),
      ),
    );
    if (!rows.length) {
      rows.push(el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No failures recorded." })));
    }
    $("failures-table").tBodies[0].replaceChildren(...rows);
  }

  // Today's usage from the ledger: {off, since, all_callers, rows: [{caller, model,
  // requests, prompt_tokens, response_tokens, failures, cancellations}]}; null when it
  // could not be read (the section's error says why).
  function renderUsage(usage) {
    const body = $("usage-body");
    if (!usage) return;
    if (usage.off) {
      body.replaceChildren(el("p", { class: "muted", text: "The usage ledger is off (LLM_LEDGER=false)." }));
      body.classList.add("placeholder");
      return;
    }
    const columns = ["caller", "model", "requests", "prompt_tokens", "response_tokens", "failures", "cancellations"];
    const rows = usage.rows.map((row) => el("tr", {}, columns.map((c) => el("td", { text: String(row[c]) }))));
    if (!rows.length) {
      rows.push(el("tr", {}, el("td", { colspan: columns.length, class: "muted", text: "No requests today." })));
    }
    const whose = usage.all_callers ? "every caller" : "this key's caller only";
    body.replaceChildren(
      el("p", { class: "muted", text: `Since ${usage.since} (00:00 UTC), ${whose}.` }),
      el(
        "div",
        { class: "scroll" },
        el(
          "table",
          { id: "usage-table" },
          el("thead", {}, el("tr", {}, columns.map((c) => el("th", { text: c.replaceAll("_", " ") })))),
          el("tbody", {}, rows),
        ),
      ),
    );
    body.classList.remove("placeholder");
  }

  // -- models -------------------------------------------------------------------------

  let modelsLoaded = false;
  const defaults = { chat: "" };
  const embeddingModels = new Set();

  // What is loaded where comes from the latest overview (every refresh), the rest of
  // a model's row from the latest models answer (every few refreshes).
  let lastModels = null;
  let loadedNow = null; // model name -> [{host, size_vram, ...}]

  function loadedFrom(hosts) {
    const loaded = new Map();
    for (const host of hosts) {
      for (const m of host.loaded) loaded.set(m.name, [...(loaded.get(m.name) || []), m]);
    }
    return loaded;
  }

  function renderModels(data) {
    lastModels = data;
    renderModelRows();
  }

  function renderModelRows() {
    const data = lastModels;
    if (!data) return;
    const rows = data.models.map((m) => {
      const caps = m.capabilities === null ? [el("span", { class: "muted", text: "not known" })]
        : m.capabilities.map((c) => el("span", { class: "chip", text: c }));
      const where = loadedNow ? loadedNow.get(m.name) || [] : m.loaded;
      const loaded = where.length
        ? where.map((x) => el("div", { text: `${x.host}: ${bytes(x.size_vram)} VRAM` }))
        : [el("span", { class: "muted", text: "not loaded" })];
      const today = m.today;
      return el(
        "tr",
        { "data-model": m.name },
        el("td", {}, el("b", { text: m.name })),
        el("td", { text: m.family || "-" }),
        el("td", { text: m.parameter_size || "-" }),
        el("td", { text: m.quantization_level || "-" }),
        el("td", { class: "num", text: bytes(m.size) }),
        el("td", {}, caps),
        el("td", {}, loaded),
        el("td", { class: "num today-requests", text: count(today.requests) }),
        el("td", { class: "num", text: count(today.prompt_tokens + today.response_tokens) }),
      );
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colspan: 9, class: "muted", text: "No models." })));
    $("models-table").tBodies[0].replaceChildren(...rows);
    $("models-note").textContent = data.today_since
      ? `Today: since ${new Date(data.today_since).toLocaleString()}.`
      : "";
    embeddingModels.clear();
    for (const m of data.models) {
      const caps = m.capabilities || [];
      if (m.embedding || (caps.includes("embedding") && !caps.includes("completion"))) {
        embeddingModels.add(m.name);
      }
    }
    fillModelChoice(data.models.map((m) => m.name));
  }

  async function refreshModels() {
    const response = await call("/console/api/models");
    if (!response.ok) throw new Error(await errorText(response));
    renderModels(await response.json());
    modelsLoaded = true;
  }

  // -- polling ------------------------------------------------------------------------

  let timer = null;
  let ticks = 0;
  let running = false;

  async function refresh() {
    if (running) return;
    running = true;
    clearTimeout(timer);
    timer = null;
    let again = true;
    try {
      const response = await call("/console/api/overview");
      if (!response.ok) throw new Error(await errorText(response));
      const data = await response.json();
      renderService(data);
      renderHosts(data.hosts);
      loadedNow = data.errors && data.errors.running ? null : loadedFrom(data.hosts);
      renderModelRows();
      renderLanes(data.lanes);
      renderHistory(data);
      renderFailures(data.failures);
      renderUsage(data.usage);
      if (!modelsLoaded || ticks % MODELS_EVERY === 0) await refreshModels();
      ticks += 1;
      setBanner(null);
      if (sessionStorage.getItem(KEY) !== null) $("forget-key").hidden = false;
    } catch (error) {
      if (error instanceof NeedKey) {
        again = false; // until a key is given
      } else {
        setStatus("unreachable");
        setBanner(`The service does not answer (${error.message}); trying again.`);
      }
    } finally {
      running = false;
    }
    if (again) timer = setTimeout(refresh, REFRESH_MS);
  }

  // -- playground -----------------------------------------------------------------------

  const choice = $("pg-model");
  let controller = null;

  function matches(name, wanted) {
    return wanted && (name === wanted || name === `${wanted}:latest`);
  }

  function fillModelChoice(names) {
    const current = [...choice.options].map((o) => o.value);
    if (current.join("\n") === names.join("\n")) return;
    const selected = choice.value;
    choice.replaceChildren(
      ...names.map((name) =>
        el("option", { value: name }, embeddingModels.has(name) ? `${name} (embeddings)` : name),
      ),
    );
    const keep = names.find((n) => n === selected) ||
      names.find((n) => matches(n, defaults.chat)) ||
      names.find((n) => !embeddingModels.has(n)) ||
      names[0];
    if (keep) choice.value = keep;
    showRoute();
  }

  function showRoute() {
    $("pg-route").textContent = embeddingModels.has(choice.value)
      ? "POST /embeddings"
      : "POST /chat/stream";
  }

  choice.addEventListener("change", showRoute);

  function resetOutput() {
    $("pg-output").hidden = false;
    $("pg-reasoning").hidden = true;
    $("pg-thinking").textContent = "";
    $("pg-answer").textContent = "";
    $("pg-error").hidden = true;
    $("pg-error").textContent = "";
    $("pg-stats").textContent = "";
  }

  function showError(text) {
    $("pg-error").hidden = false;
    $("pg-error").textContent = text;
  }

  function parseEvent(block) {
    let event = "message";
    const data = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
    }
    if (!data.length) return null;
    return { event, data: JSON.parse(data.join("\n")) };
  }

  async function chat(model, message, started) {
    const response = await call("/chat/stream", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "text/event-stream" },
      body: JSON.stringify({ model, message }),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    let first = null;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut = buffer.indexOf("\n\n");
      while (cut >= 0) {
        const event = parseEvent(buffer.slice(0, cut));
        buffer = buffer.slice(cut + 2);
        cut = buffer.indexOf("\n\n");
        if (!event) continue;
        const d = event.data;
        if (event.event === "error") {
          showError(`${d.code}: ${d.detail}`);
        } else if (!d.done) {
          if (first === null && (d.content || d.thinking)) first = performance.now() - started;
          if (d.thinking) {
            $("pg-reasoning").hidden = false;
            $("pg-thinking").append(d.thinking);
          }
          if (d.content) $("pg-answer").append(d.content);
        } else {
          const total = performance.now() - started;
          const parts = [
            `${count(d.prompt_tokens)} prompt tokens`,
            `${count(d.response_tokens)} generated tokens (reasoning included)`,
            `first token after ${ms(d.time_to_first_token_ms || first)}`,
          ];
          if (d.tokens_per_second) parts.push(`${d.tokens_per_second.toFixed(1)} tokens/s`);
          parts.push(`${ms(total)} in all`, `done: ${d.done_reason || "-"}`);
          $("pg-stats").textContent = parts.join(" · ");
        }
      }
    }
  }

  async function embed(model, text, started) {
    const response = await call("/embeddings", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model, input: text }),
      signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorText(response));
    const data = await response.json();
    const vector = data.embeddings[0] || [];
    const head = vector.slice(0, 4).map((v) => v.toFixed(4)).join(", ");
    $("pg-answer").textContent = `A vector of ${data.dimensions} dimensions: [${head}, …]`;
    $("pg-stats").textContent =
      `${count(data.prompt_tokens)} prompt tokens · ${ms(performance.now() - started)} in all`;
  }

  $("pg-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const model = choice.value;
    const message = $("pg-message").value.trim();
    if (!model || !message || controller) return;
    resetOutput();
    controller = new AbortController();
    $("pg-send").disabled = true;
    $("pg-stop").disabled = false;
    const started = performance.now();
    try {
      if (embeddingModels.has(model)) await embed(model, message, started);
      else await chat(model, message, started);
    } catch (error) {
      if (error.name === "AbortError") $("pg-stats").textContent = "Stopped.";
      else if (!(error instanceof NeedKey)) showError(error.message);
    } finally {
      controller = null;
      $("pg-send").disabled = false;
      $("pg-stop").disabled = true;
      modelsLoaded = false; // today's counts and what is loaded changed
      refresh();
    }
  });

  $("pg-stop").addEventListener("click", () => {
    if (controller) controller.abort();
  });

  if (sessionStorage.getItem(KEY) !== null) $("forget-key").hidden = false;
  refresh();
})();
