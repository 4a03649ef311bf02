/* nas-lite: draws a page's figures, summary and trial table from its page data, and keeps a
 * dashboard page live by polling its JSON endpoint (Plotly.react, no reload).
 * Shared by the dashboard (served) and the report (inlined). Data is written with textContent
 * only: names from the database never become markup. */
(function () {
  "use strict";

  const page = JSON.parse(document.getElementById("page-data").textContent);
  const PLOT_CONFIG = { responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"] };
  const state = {
    version: page.version,
    color: page.color_by || "kind",
    sort: page.sort || { key: "number", dir: 1 },
    frontOnly: false,
    rows: page.rows || [],
  };

  // -- small helpers ------------------------------------------------------------------------
  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "className") node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  }

  function number(value, digits) {
    return value === null || value === undefined ? "–" : Number(value).toFixed(digits);
  }

  function count(value) {
    if (value === null || value === undefined) return "–";
    const units = [[1e9, "G"], [1e6, "M"], [1e3, "k"]];
    for (const [size, suffix] of units) {
      if (Math.abs(value) >= size) return (value / size).toFixed(value >= 10 * size ? 1 : 2) + suffix;
    }
    return String(value);
  }

  const FORMATS = {
    int: (v) => (v === null || v === undefined ? "–" : String(v)),
    float4: (v) => number(v, 4),
    float3: (v) => number(v, 2),
    float1: (v) => number(v, 1),
    count: count,
    text: (v) => (v === null || v === undefined || v === "" ? "–" : String(v)),
  };

  // A value with its uncertainty, as the server wrote it (studies.metrics.with_spread).
  function spreadText(texts, key) {
    return (texts && texts[key]) || "–";
  }

  function trialUrl(study, trialNumber) {
    const query = new URLSearchParams({ study: study, number: String(trialNumber) });
    return page.trial_path + "?" + query.toString();
  }

  // -- figures ------------------------------------------------------------------------------
  // Figures fill their box: without autosize plotly draws 700 px wide whatever the box, and clips
  // the legend of a narrower one; the observer follows the box's width (a scrollbar, a resized
  // window). Only its width: the box's height follows the plot, so resizing on it would never stop.
  const widths = new WeakMap();
  const resizer = window.ResizeObserver ? new ResizeObserver(function (entries) {
    for (const entry of entries) {
      const width = Math.round(entry.contentRect.width);
      if (widths.get(entry.target) !== width) Plotly.Plots.resize(entry.target);
      widths.set(entry.target, width);
    }
  }) : null;

  function drawFigures(figures) {
    for (const [key, figure] of Object.entries(figures || {})) {
      const div = document.getElementById("fig-" + key);
      if (!div) continue;
      Plotly.react(div, figure.data, Object.assign({ autosize: true }, figure.layout), PLOT_CONFIG);
      bindClick(div);
      if (resizer && !div.dataset.observed) {
        div.dataset.observed = "1";
        resizer.observe(div);
      }
    }
  }

  function bindClick(div) {
    if (div.dataset.bound || !page.trial_path) return;
    div.dataset.bound = "1";
    div.on("plotly_click", function (event) {
      const point = event && event.points && event.points[0];
      if (!point || point.customdata === undefined || point.customdata === null) return;
      const pair = Array.isArray(point.customdata) ? point.customdata : [point.customdata, page.study];
      window.location.href = trialUrl(pair[1], pair[0]);
    });
  }

  // -- summary cards ------------------------------------------------------------------------
  function stateText(states) {
    return Object.entries(states || {})
      .map(([name, n]) => n + " " + name.toLowerCase())
      .join(" · ");
  }

  function constraintText(constraints) {
    const parts = [];
    if (constraints.min_dice !== undefined) parts.push("Dice ≥ " + constraints.min_dice);
    if (constraints.max_latency_ms !== undefined) parts.push("≤ " + constraints.max_latency_ms + " ms");
    if (constraints.max_size_kb !== undefined) parts.push("≤ " + constraints.max_size_kb + " KB");
    return parts.length ? parts.join(" · ") : "none";
  }

  function drawSummary(summary) {
    const box = document.getElementById("summary");
    if (!box || !summary) return;
    const cards = [
      ["trials", String(summary.trials), stateText(summary.states)],
      ["on the Pareto front", String(summary.front), "of " + summary.complete + " complete"],
      ["hypervolume", number(summary.hypervolume, 4), "share of the reference box"],
      ["best Dice", summary.best_dice_text || "–", "feasible trials · ± 95% over images"],
      ["fastest", summary.min_latency_text ? summary.min_latency_text + " ms" : "–", "latency p50 · ± standard error"],
      ["smallest", summary.min_size_kb === null ? "–" : number(summary.min_size_kb, 1) + " KB", ".tflite size"],
      ["constraints", constraintText(summary.constraints || {}), "from the study's config"],
    ];
    box.replaceChildren(
      ...cards.map(([label, value, note]) =>
        el("div", { className: "card" }, [
          el("div", { className: "card-label", text: label }),
          el("div", { className: "card-value", text: value }),
          el("div", { className: "card-note", text: note }),
        ])
      )
    );
  }

  // -- what to export -----------------------------------------------------------------------
  function copyButton(text) {
    if (!navigator.clipboard) return null;
    const button = el("button", { type: "button", className: "copy", text: "copy" });
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(text).then(function () { button.textContent = "copied"; });
    });
    return button;
  }

  function command(text) {
    return el("div", { className: "command" }, [el("code", { text: text }), copyButton(text)]);
  }

  function trialLink(item) {
    const label = "trial #" + item.number;
    return page.trial_path ? el("a", { href: trialUrl(page.study, item.number), text: label }) : el("span", { text: label });
  }

  function recommendation(item) {
    const test = item.texts.test_dice ? " (test " + item.texts.test_dice + ")" : "";
    const figures = "Dice " + spreadText(item.texts, "dice") + test + " · " + spreadText(item.texts, "latency_ms") +
      " ms · " + number(item.size_kb, 1) + " KB · " + item.kind + " · " + item.quant;
    return el("div", { className: "rec", "data-number": String(item.number) }, [
      el("div", { className: "rec-head" }, [
        ...item.labels.map((label) => el("span", { className: "badge pick", text: label })),
        el("b", {}, [" ", trialLink(item)]),
        item.preset ? el("span", { className: "badge preset", text: item.preset }) : null,
      ]),
      el("div", { className: "card-note", text: figures }),
      command(item.command),
      el("div", { className: "card-note", text: "or by its rule, whatever the study holds when you run it:" }),
      ...item.pick_commands.map(command),
    ]);
  }

  function drawRecommended(items) {
    const box = document.getElementById("recommended");
    if (!box || !items) return;
    const head = el("h2", { text: "What to export " }, [
      el("span", { className: "muted", text: "writes the .tflite and its sidecar model.json" }),
    ]);
    const body = items.length
      ? el("div", { className: "recs" }, items.map(recommendation))
      : el("p", { className: "muted", text: "No complete feasible trial yet: the recommendations appear with the first one." });
    box.replaceChildren(head, body);
  }

  // -- trial table --------------------------------------------------------------------------
  function compareRows(key, dir) {
    return function (a, b) {
      const x = a[key], y = b[key];
      const xMissing = x === null || x === undefined, yMissing = y === null || y === undefined;
      if (xMissing || yMissing) return xMissing === yMissing ? a.number - b.number : xMissing ? 1 : -1;
      if (typeof x === "number" && typeof y === "number") return (x - y) * dir || a.number - b.number;
      return String(x).localeCompare(String(y)) * dir || a.number - b.number;
    };
  }

  function numberCell(row) {
    const label = "#" + row.number;
    const link = page.trial_path ? el("a", { href: trialUrl(page.study, row.number), text: label }) : el("span", { text: label });
    return el("td", { className: "num" }, [
      link,
      row.front ? el("span", { className: "star", title: "on the Pareto front", text: " ★" }) : null,
      ...(row.ties || []).map((other) => el("span", {
        className: "badge tie", text: "≈ #" + other,
        title: "a tie: within the measurements' own uncertainty of #" + other + " in every objective",
      })),
      ...(row.picks || []).map((label) => el("span", { className: "badge pick", text: label })),
      row.preset ? el("span", { className: "badge preset", text: row.preset }) : null,
    ]);
  }

  function tableRow(row) {
    const cells = page.columns.map(([key, , format]) => {
      if (key === "number") return numberCell(row);
      if (key === "state") return el("td", {}, [el("span", { className: "badge state-" + row.state, text: row.state })]);
      const text = format === "spread" ? spreadText(row.texts, key) : FORMATS[format](row[key]);
      return el("td", { className: format === "text" ? "text" : "value", text: text });
    });
    const knee = (row.picks || []).includes("knee");
    const classes = [row.front ? "front" : "", knee ? "knee" : "", row.note ? "noted" : ""].join(" ").trim();
    return el("tr", { className: classes || null, title: row.note || null, "data-number": String(row.number) }, cells);
  }

  function tableHead(tableId) {
    const cells = page.columns.map(([key, header]) => {
      const mark = state.sort.key === key ? (state.sort.dir > 0 ? " ▲" : " ▼") : "";
      const th = el("th", { "data-key": key, title: "sort by " + header, text: header + mark });
      th.addEventListener("click", function () {
        state.sort = { key: key, dir: state.sort.key === key ? -state.sort.dir : key === "dice" ? -1 : 1 };
        drawTables();
      });
      return th;
    });
    return el("thead", {}, [el("tr", {}, cells)]);
  }

  function drawTable(tableId, rows) {
    const table = document.getElementById(tableId);
    if (!table || !page.columns) return;
    const sorted = rows.slice().sort(compareRows(state.sort.key, state.sort.dir));
    table.replaceChildren(tableHead(tableId), el("tbody", {}, sorted.map(tableRow)));
  }

  function drawTables() {
    const rows = state.frontOnly ? state.rows.filter((r) => r.front) : state.rows;
    drawTable("trials", rows);
    drawTable("front", state.rows.filter((r) => r.front));
  }

  // -- live refresh -------------------------------------------------------------------------
  function setLive(ok) {
    const badge = document.getElementById("live");
    if (!badge) return;
    badge.hidden = false;
    badge.className = "live " + (ok ? "ok" : "lost");
    badge.textContent = ok ? "● live · " + new Date().toLocaleTimeString() : "● connection lost, retrying";
  }

  function apply(data) {
    state.version = data.version;
    drawFigures(data.figures);
    if (data.rows) {
      state.rows = data.rows;
      drawTables();
    }
    if (data.summary) drawSummary(data.summary);
    if (data.recommended) drawRecommended(data.recommended);
  }

  function fetchPayload(withVersion) {
    let address = page.poll + "&color=" + encodeURIComponent(state.color);
    if (withVersion) address += "&version=" + encodeURIComponent(state.version);
    return fetch(address, { cache: "no-store", headers: { Accept: "application/json" } }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function poll() {
    fetchPayload(true)
      .then(function (data) {
        if (!data.unchanged) apply(data);
        setLive(true);
      })
      .catch(function () {
        setLive(false);
      })
      .finally(function () {
        window.setTimeout(poll, page.refresh_ms || 3000);
      });
  }

  // -- controls -----------------------------------------------------------------------------
  function setColor(color) {
    state.color = color;
    if (page.figure_sets) {
      drawFigures(page.figure_sets[color]);
      return;
    }
    fetchPayload(false).then(apply).catch(function () { setLive(false); });
    const query = new URLSearchParams(window.location.search);
    query.set("color", color);
    window.history.replaceState(null, "", window.location.pathname + "?" + query.toString());
  }

  function bindControls() {
    document.querySelectorAll("select.nav-select").forEach(function (select) {
      select.addEventListener("change", function () { select.form.submit(); });
    });
    const color = document.getElementById("color-select");
    if (color) color.addEventListener("change", function () { setColor(color.value); });
    const frontOnly = document.getElementById("front-only");
    if (frontOnly) {
      frontOnly.addEventListener("change", function () {
        state.frontOnly = frontOnly.checked;
        drawTables();
      });
    }
  }

  function start() {
    bindControls();
    drawSummary(page.summary);
    drawRecommended(page.recommended);
    drawFigures(page.figure_sets ? page.figure_sets[state.color] : page.figures);
    drawTables();
    if (page.poll) window.setTimeout(poll, page.refresh_ms || 3000);
    document.body.dataset.ready = "1";
  }

  start();
})();
