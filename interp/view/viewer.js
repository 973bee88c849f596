// interp view: mask-impact heatmaps, token strips, head breakdowns and knockout curves.
// Self-contained: reads the JSON block written beside this script, builds the DOM with
// textContent only (token text is untrusted), draws grids on canvas, fetches nothing.
"use strict";
(() => {
  const DATA = JSON.parse(document.getElementById("interp-data").textContent);
  const SEQ = DATA.colormaps.rocket_r;
  const DIV = DATA.colormaps.vlag;
  const SOURCE_ORDER = ["subject", "non_subject", "last"];
  const SOURCE_COLOURS = { subject: "#c0392b", non_subject: "#2471a3", last: "#1e8449" };
  const app = document.getElementById("app");
  const HASH = parseHash();

  // ------------------------------------------------------------------ small helpers

  function parseHash() {
    const out = {};
    for (const part of (location.hash || "").replace(/^#/, "").split("&")) {
      if (!part) continue;
      const i = part.indexOf("=");
      try {
        out[decodeURIComponent(i < 0 ? part : part.slice(0, i))] = i < 0 ? "" : decodeURIComponent(part.slice(i + 1));
      } catch (e) { /* a malformed fragment is ignored */ }
    }
    return out;
  }

  function el(tag, props, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key === "data") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, String(value));
    }
    for (const child of [].concat(children === undefined ? [] : children)) {
      if (child !== null && child !== undefined) node.append(child);  // strings become text nodes
    }
    return node;
  }

  const SVGNS = "http://www.w3.org/2000/svg";
  function svgEl(tag, attrs, text) {
    const node = document.createElementNS(SVGNS, tag);
    for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, String(value));
    if (text !== undefined) node.textContent = String(text);
    return node;
  }

  function option(value, text, selected) {
    const o = el("option", { value: String(value), text: text });
    o.selected = !!selected;
    return o;
  }

  function select(name, options, current, onChange) {
    const s = el("select", { name: name, "aria-label": name, onchange: () => onChange(s.value) },
      options.map(([value, text]) => option(value, text, String(value) === String(current))));
    return el("label", { class: "control" }, [name + " ", s]);
  }

  function fmt(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return "–";
    if (v === 0) return "0";
    const a = Math.abs(v);
    return a >= 1e-3 && a < 1e6 ? String(Number(v.toPrecision(6))) : v.toExponential(4);
  }

  function short(v) {
    if (!Number.isFinite(v)) return "–";
    return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-2 && v !== 0) ? v.toExponential(1) : String(Number(v.toPrecision(3)));
  }

  function visible(token) {
    const t = String(token).replace(/\n/g, "\\n").replace(/\t/g, "\\t").replace(/\r/g, "\\r");
    if (t === "") return "∅";
    return t.startsWith(" ") ? "␣" + t.slice(1) : t;
  }

  function clamp(x, lo, hi) { return Math.max(lo, Math.min(hi, x)); }

  function colour(lut, v, lo, hi) {
    if (v === null || v === undefined || Number.isNaN(v)) return "#f0f0f0";
    const t = hi > lo ? clamp((v - lo) / (hi - lo), 0, 1) : 0;
    return lut[Math.round(t * (lut.length - 1))];
  }

  function inkOn(hex) {
    const n = parseInt(hex.slice(1), 16);
    const lum = 0.299 * (n >> 16) + 0.587 * ((n >> 8) & 255) + 0.114 * (n & 255);
    return lum < 140 ? "#fff" : "#111";
  }

  function decode(b64) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Float32Array(bytes.buffer);
  }

  // value range of arrays laid out as rows × n, optionally leaving column 0 out
  function range(arrays, n, skipFirst) {
    let lo = Infinity, hi = -Infinity;
    for (const a of arrays) {
      if (!a) continue;
      for (let i = 0; i < a.length; i++) {
        if (skipFirst && n > 1 && i % n === 0) continue;
        const v = a[i];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    }
    if (!(lo <= hi)) return [0, 1];
    return lo === hi ? [lo, lo + (Math.abs(lo) || 1)] : [lo, hi];
  }

  function symmetric(arrays, n, skipFirst) {
    const [lo, hi] = range(arrays, n, skipFirst);
    const bound = Math.max(Math.abs(lo), Math.abs(hi));
    return bound > 0 && Number.isFinite(bound) ? [-bound, bound] : [-1, 1];
  }

  // ------------------------------------------------------------------ hover: tooltip + readout line

  const tip = el("div", { class: "tip", role: "tooltip" });
  document.body.append(tip);

  function hover(ev, readout, lines) {
    readout.textContent = lines.join(" · ");
    tip.textContent = "";
    for (const line of lines) tip.append(el("div", { text: line }));
    tip.style.display = "block";
    const x = ev.clientX + 14, y = ev.clientY + 14;
    tip.style.left = Math.min(x, window.innerWidth - tip.offsetWidth - 8) + "px";
    tip.style.top = Math.min(y, window.innerHeight - tip.offsetHeight - 8) + "px";
  }

  function unhover() { tip.style.display = "none"; }

  // ------------------------------------------------------------------ drawing

  function legend(lut, lo, hi, caption) {
    const bar = el("canvas", { class: "legend-bar", width: 160, height: 10 });
    const ctx = bar.getContext("2d");
    for (let x = 0; x < 160; x++) { ctx.fillStyle = lut[Math.round((x / 159) * (lut.length - 1))]; ctx.fillRect(x, 0, 1, 10); }
    return el("div", { class: "legend" }, [el("span", { text: caption }), el("span", { class: "num", text: short(lo) }),
      bar, el("span", { class: "num", text: short(hi) })]);
  }

  // A rows × cols grid of coloured cells on a canvas; hover and click report (row, col).
  function gridCanvas(o) {
    const rows = o.rows.length, cols = o.cols;
    const ratio = window.devicePixelRatio || 1;
    const left = 10 + 7 * Math.max(...o.rows.map((r) => String(r).length));
    const cw = clamp(Math.floor((o.width - left - 8) / Math.max(cols, 1)), 3, 44);
    const ch = rows <= 16 ? 20 : rows <= 32 ? 16 : Math.max(6, Math.floor(520 / rows));
    const labels = o.tokens && cw >= 11;
    const bottom = labels ? 8 + 6 * Math.min(12, Math.max(1, ...o.tokens.map((t) => visible(t).length))) : 4;
    const width = left + cols * cw + 4, height = rows * ch + bottom;
    const canvas = el("canvas", { class: "grid", role: "img", "aria-label": o.name,
      data: { left: left, top: 0, cellWidth: cw, cellHeight: ch, rows: rows, cols: cols } });
    canvas.width = Math.ceil(width * ratio);
    canvas.height = Math.ceil(height * ratio);
    canvas.style.width = width + "px";
    canvas.style.height = height + "px";
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    const gap = cw >= 6 ? 1 : 0;
    for (let r = 0; r < rows; r++) {
      for (let c = 0; c < cols; c++) {
        ctx.fillStyle = colour(o.lut, o.get(r, c), o.lo, o.hi);
        ctx.fillRect(left + c * cw, r * ch, cw - gap, ch - gap);
      }
    }
    ctx.fillStyle = "#333";
    ctx.font = "11px system-ui, sans-serif";
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    const every = Math.ceil(11 / ch);
    o.rows.forEach((label, r) => { if (r % every === 0) ctx.fillText(String(label), left - 4, r * ch + ch / 2); });
    if (labels) {
      for (let c = 0; c < cols; c++) {
        const text = visible(o.tokens[c]);
        ctx.save();
        ctx.translate(left + c * cw + cw / 2, rows * ch + 4);
        ctx.rotate(-Math.PI / 2);
        ctx.fillText(text.length > 12 ? text.slice(0, 11) + "…" : text, 0, 0);
        ctx.restore();
      }
    }
    if (o.selected) {
      ctx.strokeStyle = "#00bcd4";
      ctx.lineWidth = 2;
      const { row, col } = o.selected;
      if (row !== null && row >= 0) ctx.strokeRect(left + 1, row * ch + 1, cols * cw - 2, ch - 2);
      if (col !== null && col >= 0 && col < cols) ctx.strokeRect(left + col * cw + 1, 1, cw - 2, rows * ch - 2);
    }
    const cell = (ev) => {
      const box = canvas.getBoundingClientRect();
      const c = Math.floor((ev.clientX - box.left - left) / cw), r = Math.floor((ev.clientY - box.top) / ch);
      return r >= 0 && r < rows && c >= 0 && c < cols ? [r, c] : null;
    };
    canvas.addEventListener("mousemove", (ev) => { const rc = cell(ev); if (rc) o.onHover(rc[0], rc[1], ev); else unhover(); });
    canvas.addEventListener("mouseleave", unhover);
    if (o.onClick) {
      canvas.classList.add("clickable");
      canvas.addEventListener("click", (ev) => { const rc = cell(ev); if (rc) o.onClick(rc[0], rc[1]); });
    }
    return el("div", { class: "scroll" }, canvas);
  }

  // ------------------------------------------------------------------ mask-impact

  function maskImpactSection(runs) {
    const first = runs[0];
    const steps = first.steps.map((s) => s.step);
    const heads = first.variants.filter((v) => /^Head_\d+$/.test(v));
    const st = {
      metric: first.metrics.includes(HASH.metric) ? HASH.metric : first.metrics[0],
      variant: HASH.variant || "Full",
      step: steps.includes(Number(HASH.step)) ? Number(HASH.step) : steps[0],
      // #layer=N&pos=N open a cell's breakdown; layer=max / pos=max pick the strongest layer / token
      layer: HASH.layer === "max" ? "max" : first.layers.includes(Number(HASH.layer)) && HASH.layer !== "" ? Number(HASH.layer) : null,
      pos: HASH.pos === "max" ? "max" : HASH.pos !== undefined && HASH.pos !== "" && Number.isInteger(Number(HASH.pos)) ? Number(HASH.pos) : null,
      skipFirst: HASH.x0 === "1",
    };
    st.chosen = st.layer !== null;

    const stepOf = (run, step) => run.steps.find((s) => s.step === step) || null;
    const values = (run, step, metric, variant) => {
      const sd = stepOf(run, step);
      const b64 = sd && sd.values[metric] && sd.values[metric][variant];
      if (!b64) return null;
      run._cache = run._cache || new Map();
      const key = step + "|" + metric + "|" + variant;
      if (!run._cache.has(key)) run._cache.set(key, decode(b64));
      return run._cache.get(key);
    };
    const variantsFor = (metric) => first.variants.filter((v) => first.steps.some((s) => s.values[metric] && s.values[metric][v]));
    const sameTokens = (run, n) => {
      const sd = stepOf(run, st.step);
      return sd && sd.n === n && run.tokens.slice(0, n).every((t, i) => t === first.tokens[i]);
    };
    const diffOf = (a, b) => {
      if (!a || !b || a.length !== b.length) return null;
      const d = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) d[i] = a[i] - b[i];
      return d;
    };

    const section = el("section", { class: "mi" });
    const settings = Object.entries(first.settings || {}).map(([k, v]) => k + " " + v).join(" · ");
    section.append(el("h2", { text: "mask-impact" + (runs.length > 1 ? " · " + runs.length + " results" : "") }));
    if (first.prompt !== null && first.prompt !== undefined) section.append(el("p", { class: "prompt", text: first.prompt }));
    if (settings) section.append(el("p", { class: "muted", text: settings }));
    const controls = el("div", { class: "controls" });
    const readout = el("div", { class: "readout", "aria-live": "polite", text: "Hover a cell or a token for its exact value." });
    const body = el("div", { class: "body" });
    section.append(controls, readout, body);

    function renderControls(layer) {
      controls.textContent = "";
      const variants = variantsFor(st.metric);
      controls.append(
        select("metric", first.metrics.map((m) => [m, m]), st.metric, (v) => { st.metric = v; render(); }),
        select("variant", variants.map((v) => [v, v]), st.variant, (v) => { st.variant = v; render(); }),
        select("step", first.steps.map((s) => [s.step, "step " + s.step + (s.next_token != null ? " → " + visible(s.next_token) : "")]),
          st.step, (v) => { st.step = Number(v); render(); }),
        select("layer", first.layers.map((l) => [l, "layer " + l]), layer, (v) => { st.layer = Number(v); st.chosen = true; render(); }),
      );
      const box = el("input", { type: "checkbox", name: "exclude-first", onchange: () => { st.skipFirst = box.checked; render(); } });
      box.checked = st.skipFirst;
      controls.append(el("label", { class: "control" }, [box, " keep position 0 out of the colour scale"]));
    }

    function tokenLines(run, label, p, v, what) {
      const id = run.token_ids[p];
      return [label, "position " + p, "token “" + visible(run.tokens[p]) + "”", "id " + (id === null || id === undefined ? "?" : id), what + " = " + fmt(v)];
    }

    function strip(run, label, arr, n, li, lo, hi, lut, what, kind) {
      const div = el("div", { class: "strip", data: { kind: kind, label: label } });
      for (let p = 0; p < n; p++) {
        const v = arr ? arr[li * n + p] : NaN;
        const bg = colour(lut, v, lo, hi);
        const span = el("span", { class: "tok" + (p === st.pos ? " sel" : ""), text: visible(run.tokens[p]),
          data: { pos: p, value: Number.isNaN(v) ? "" : String(v) } });
        span.style.background = bg;
        span.style.color = inkOn(bg);
        span.addEventListener("mouseenter", (ev) => hover(ev, readout, tokenLines(run, label, p, v, what)));
        span.addEventListener("mouseleave", unhover);
        span.addEventListener("click", () => { st.layer = first.layers[li]; st.pos = p; st.chosen = true; render(); });
        div.append(span);
      }
      return div;
    }

    function render() {
      unhover();
      body.textContent = "";
      const variants = variantsFor(st.metric);
      if (!variants.includes(st.variant)) st.variant = variants.includes("Full") ? "Full" : variants[0];
      const sd0 = stepOf(first, st.step);
      const n = sd0.n, layers = first.layers;
      const arrays = runs.map((run) => (sameTokens(run, n) ? values(run, st.step, st.metric, st.variant) : null));
      const [lo, hi] = range(arrays, n, st.skipFirst);
      if (st.layer === "max") st.layer = strongestLayer(arrays[0], n, layers);
      if (st.pos === "max") st.pos = strongestPosition(arrays[0], n, layers.indexOf(st.layer));
      if (st.pos !== null && (st.pos < 0 || st.pos >= n)) st.pos = null;
      const layer = st.layer !== null ? st.layer : strongestLayer(arrays[0], n, layers);
      const li = layers.indexOf(layer);
      renderControls(layer);
      const what = st.variant + " " + st.metric;
      const width = Math.max(360, Math.floor((document.documentElement.clientWidth - 48) / runs.length) - 24);

      const scales = el("div", { class: "legends" }, legend(SEQ, lo, hi, what + (st.skipFirst ? " (position 0 outside the scale)" : "")));
      body.append(scales);
      const row = el("div", { class: "panels" });
      runs.forEach((run, i) => {
        const label = run.label;
        const panel = el("div", { class: "panel", data: { run: i } }, el("h3", { text: label, title: run.model }));
        if (!arrays[i]) {
          panel.append(el("p", { class: "note", text: stepOf(run, st.step) ? "tokens differ from the first result at step " + st.step + ": not shown on the shared scale"
            : "no step " + st.step + " in this result" }));
        } else {
          panel.append(el("div", { class: "caption", text: "layer " + layer + " · tokens coloured by " + what }),
            strip(run, label, arrays[i], n, li, lo, hi, SEQ, what, "value"),
            gridCanvas({ name: "heatmap " + label, rows: layers, cols: n, tokens: run.tokens.slice(0, n), width: width,
              lut: SEQ, lo: lo, hi: hi, get: (r, c) => arrays[i][r * n + c],
              selected: st.chosen ? { row: layers.indexOf(st.layer), col: st.pos } : null,
              onHover: (r, c, ev) => hover(ev, readout, ["layer " + layers[r]].concat(tokenLines(run, label, c, arrays[i][r * n + c], what))),
              onClick: (r, c) => { st.layer = layers[r]; st.pos = c; st.chosen = true; render(); } }));
        }
        row.append(panel);
      });
      body.append(row);

      if (runs.length > 1) {
        const diffs = arrays.map((a) => diffOf(a, arrays[0]));
        const [dlo, dhi] = symmetric(diffs.slice(1), n, st.skipFirst);
        scales.append(legend(DIV, dlo, dhi, "difference to " + first.label));
        const drow = el("div", { class: "panels" });
        drow.append(el("div", { class: "panel muted-panel" }, el("p", { class: "note", text: "difference to the first →" })));
        runs.slice(1).forEach((run, k) => {
          const i = k + 1, d = diffs[i], label = run.label + " − " + first.label;
          const panel = el("div", { class: "panel diff", data: { run: i } }, el("h3", { text: label }));
          if (!d) panel.append(el("p", { class: "note", text: "no difference: this result's tokens or values at step " + st.step + " do not match the first" }));
          else {
            panel.append(el("div", { class: "caption", text: "layer " + layer + " · Δ " + what }),
              strip(run, label, d, n, li, dlo, dhi, DIV, "Δ " + what, "diff"),
              gridCanvas({ name: "difference " + label, rows: layers, cols: n, tokens: run.tokens.slice(0, n), width: width,
                lut: DIV, lo: dlo, hi: dhi, get: (r, c) => d[r * n + c],
                selected: st.chosen ? { row: layers.indexOf(st.layer), col: st.pos } : null,
                onHover: (r, c, ev) => hover(ev, readout, ["layer " + layers[r]].concat(tokenLines(run, label, c, d[r * n + c], "Δ " + what))),
                onClick: (r, c) => { st.layer = layers[r]; st.pos = c; st.chosen = true; render(); } }));
          }
          drow.append(panel);
        });
        body.append(drow);
      }
      body.append(breakdown(arrays, n, li, width));
    }

    function strongestLayer(arr, n, layers) {
      if (!arr) return layers[0];
      let best = 0, bestValue = -Infinity;
      for (let r = 0; r < layers.length; r++) {
        for (let c = st.skipFirst && n > 1 ? 1 : 0; c < n; c++) {
          if (arr[r * n + c] > bestValue) { bestValue = arr[r * n + c]; best = r; }
        }
      }
      return layers[best];
    }

    function strongestPosition(arr, n, li) {
      if (!arr || li < 0) return null;
      let best = null;
      for (let c = st.skipFirst && n > 1 ? 1 : 0; c < n; c++) if (best === null || arr[li * n + c] > arr[li * n + best]) best = c;
      return best;
    }

    // the head × token grids at the chosen layer, and every head's value at the chosen token
    function breakdown(arrays, n, li, width) {
      const box = el("div", { class: "breakdown" });
      if (!st.chosen) {
        box.append(el("p", { class: "hint", text: "Click a heatmap cell or a token for the head × token breakdown at that layer." }));
        return box;
      }
      const layer = first.layers[li];
      box.append(el("h3", { text: "Heads at layer " + layer + " · " + st.metric + " · step " + st.step }));
      const perRun = runs.map((run, i) => {
        if (!arrays[i] && i > 0) return null;
        const hs = heads.map((h) => values(run, st.step, st.metric, h));
        if (hs.some((a) => !a)) return null;
        const m = new Float32Array(heads.length * n);
        hs.forEach((a, h) => m.set(a.subarray(li * n, li * n + n), h * n));
        return m;
      });
      if (!heads.length || !perRun[0]) {
        box.append(el("p", { class: "note", text: "no per-head values for " + st.metric + " (kl is defined for Logits only)" }));
        return box;
      }
      const [lo, hi] = range(perRun, n, st.skipFirst);
      const diffs = perRun.map((m) => diffOf(m, perRun[0]));
      const [dlo, dhi] = symmetric(diffs.slice(1), n, st.skipFirst);
      const legends = el("div", { class: "legends" }, legend(SEQ, lo, hi, "head " + st.metric));
      if (runs.length > 1) legends.append(legend(DIV, dlo, dhi, "difference to " + first.label));
      box.append(legends);
      const row = el("div", { class: "panels" });
      const headLabels = heads.map((h) => h.replace("Head_", "H"));
      runs.forEach((run, i) => {
        if (!perRun[i]) return;
        const grids = [[perRun[i], SEQ, lo, hi, run.label, st.metric]];
        if (i > 0 && diffs[i]) grids.push([diffs[i], DIV, dlo, dhi, run.label + " − " + first.label, "Δ " + st.metric]);
        for (const [m, lut, a, b, label, what] of grids) {
          row.append(el("div", { class: "panel" + (lut === DIV ? " diff" : "") }, [el("h3", { text: label }),
            gridCanvas({ name: "heads " + label, rows: headLabels, cols: n, tokens: run.tokens.slice(0, n), width: width,
              lut: lut, lo: a, hi: b, get: (r, c) => m[r * n + c], selected: { row: null, col: st.pos },
              onHover: (r, c, ev) => hover(ev, readout, ["layer " + layer, heads[r]].concat(tokenLines(run, label, c, m[r * n + c], heads[r] + " " + what))),
              onClick: (r, c) => { st.pos = c; render(); } })]));
        }
      });
      box.append(row);
      if (st.pos === null) {
        box.append(el("p", { class: "hint", text: "Click a token for every head's value at it." }));
        return box;
      }
      const p = st.pos;
      const cols = runs.map((run, i) => [run.label, perRun[i], "value", i]).filter((c) => c[1]);
      runs.forEach((run, i) => { if (i > 0 && diffs[i]) cols.push([run.label + " − " + first.label, diffs[i], "diff", i]); });
      const table = el("table", { class: "heads", data: { layer: layer, pos: p } }, [
        el("caption", { text: "layer " + layer + " · position " + p + " · token “" + visible(first.tokens[p]) + "” · id " +
          (first.token_ids[p] === null || first.token_ids[p] === undefined ? "?" : first.token_ids[p]) + " · " + st.metric }),
        el("thead", {}, el("tr", {}, [el("th", { text: "head" })].concat(cols.map((c) => el("th", { text: c[0] }))))),
        el("tbody", {}, heads.map((h, r) => el("tr", {}, [el("th", { text: h })].concat(cols.map(([, m, kind, i]) => {
          const v = m[r * n + p];
          return el("td", { class: "num", text: fmt(v), data: { head: h, run: i, kind: kind, value: Number.isNaN(v) ? "" : String(v) } });
        }))))),
      ]);
      box.append(table);
      return box;
    }

    render();
    window.addEventListener("resize", debounce(render, 200));
    return section;
  }

  function debounce(fn, ms) {
    let timer = null;
    return () => { clearTimeout(timer); timer = setTimeout(fn, ms); };
  }

  // ------------------------------------------------------------------ knockout

  const KO_METRICS = [["rel_change_pct", "Δ p(top-1) %"], ["kl", "KL(base ‖ knocked out)"], ["top1_prob_masked", "p(top-1) knocked out"]];

  function knockoutSection(ko, index) {
    const cols = ko.columns;
    const n = cols.layer.length;
    const sources = [...new Set(cols.source)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : 1));
    const windows = [...new Set(cols.window)].sort((a, b) => a - b);
    const layers = [...new Set(cols.layer)].sort((a, b) => a - b);
    const prompts = new Map(ko.prompts.map((p) => [p.prompt_index, p]));
    for (const i of new Set(cols.prompt_index)) if (!prompts.has(i)) prompts.set(i, { prompt_index: i });
    const st = { metric: "rel_change_pct", window: windows.includes(ko.window) ? ko.window : windows[0], prompt: null };

    const section = el("section", { class: "ko", data: { index: index } });
    section.append(el("h2", { text: "knockout · " + ko.label }));
    const facts = [["model", ko.model], ["attention", ko.attention], ["prompts", ko.n_prompts], ["skipped", ko.skipped]]
      .filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => k + " " + v).join(" · ");
    if (facts) section.append(el("p", { class: "muted", text: facts }));
    const controls = el("div", { class: "controls" });
    const readout = el("div", { class: "readout", "aria-live": "polite", text: "Hover a point for its value; click a prompt below for its own curves." });
    const body = el("div", { class: "body" });
    section.append(controls, readout, body);

    function rank(source) { const i = SOURCE_ORDER.indexOf(source); return i < 0 ? SOURCE_ORDER.length : i; }

    function rowsWhere(test) {
      const out = [];
      for (let i = 0; i < n; i++) if (cols.window[i] === st.window && test(i)) out.push(i);
      return out;
    }

    function curves(promptIndex) {
      const chosen = rowsWhere((i) => promptIndex === null || cols.prompt_index[i] === promptIndex);
      return sources.map((source) => {
        const points = layers.map((layer) => {
          const vs = chosen.filter((i) => cols.source[i] === source && cols.layer[i] === layer)
            .map((i) => cols[st.metric][i]).filter((v) => v !== null);
          return { x: layer, y: vs.length ? vs.reduce((a, b) => a + b, 0) / vs.length : NaN, n: vs.length };
        }).filter((p) => p.n > 0);
        return { name: source, colour: SOURCE_COLOURS[source] || "#777", points: points };
      }).filter((s) => s.points.length);
    }

    function render() {
      unhover();
      controls.textContent = "";
      controls.append(select("metric", KO_METRICS, st.metric, (v) => { st.metric = v; render(); }));
      if (windows.length > 1) controls.append(select("window", windows.map((w) => [w, "window " + w]), st.window, (v) => { st.window = Number(v); render(); }));
      body.textContent = "";
      const label = KO_METRICS.find((m) => m[0] === st.metric)[1];
      const p = st.prompt === null ? null : prompts.get(st.prompt);
      const title = p ? "prompt " + p.prompt_index : "mean over " + new Set(rowsWhere(() => true).map((i) => cols.prompt_index[i])).size + " prompts";
      body.append(el("h3", { text: title + " · window " + st.window }));
      if (p) {
        body.append(el("button", { type: "button", class: "back", text: "← all prompts", onclick: () => { st.prompt = null; render(); } }));
        body.append(promptTokens(p));
      }
      body.append(lineChart(curves(st.prompt), label, (s, pt, ev) => hover(ev, readout,
        [s.name, "layer " + pt.x, label + " = " + fmt(pt.y) + (st.prompt === null ? " (mean of " + pt.n + ")" : "")])));
      body.append(promptTable());
    }

    function promptTokens(p) {
      const box = el("div", { class: "drill" });
      const where = new Map();
      for (const [source, positions] of Object.entries(p.sources || {})) for (const pos of positions) if (!where.has(pos)) where.set(pos, source);
      const first = rowsWhere((i) => cols.prompt_index[i] === p.prompt_index)[0];
      if (p.prompt !== undefined) box.append(el("p", { class: "prompt", text: p.prompt }));
      const facts = [];
      if (p.subject !== undefined) facts.push("subject “" + p.subject + "”");
      if (first !== undefined) facts.push("baseline top-1 “" + visible(cols.top1_token[first]) + "” p = " + fmt(cols.top1_prob[first]));
      if (facts.length) box.append(el("p", { class: "muted", text: facts.join(" · ") }));
      if (p.tokens) {
        const strip = el("div", { class: "strip" });
        p.tokens.forEach((t, pos) => {
          const source = where.get(pos);
          const span = el("span", { class: "tok src", text: visible(t), data: { pos: pos, source: source || "" } });
          if (source) { span.style.background = SOURCE_COLOURS[source] || "#777"; span.style.color = "#fff"; }
          span.addEventListener("mouseenter", (ev) => hover(ev, readout, ["position " + pos, "token “" + visible(t) + "”",
            "id " + (p.token_ids && p.token_ids[pos] !== undefined ? p.token_ids[pos] : "?"), "source " + (source || "none")]));
          span.addEventListener("mouseleave", unhover);
          strip.append(span);
        });
        box.append(strip);
      }
      return box;
    }

    function promptTable() {
      const table = el("table", { class: "prompts" });
      table.append(el("thead", {}, el("tr", {}, ["#", "prompt", "subject", "top-1", "p", "largest drop"].map((h) => el("th", { text: h })))));
      const tbody = el("tbody");
      for (const [i, p] of [...prompts.entries()].sort((a, b) => a[0] - b[0])) {
        const rows = rowsWhere((r) => cols.prompt_index[r] === i);
        let worst = null;
        for (const r of rows) if (cols.rel_change_pct[r] !== null && (worst === null || cols.rel_change_pct[r] < cols.rel_change_pct[worst])) worst = r;
        const tr = el("tr", { class: "clickable" + (st.prompt === i ? " sel" : ""), data: { prompt: i },
          onclick: () => { st.prompt = i; render(); } }, [
          el("td", { class: "num", text: i }), el("td", { text: p.prompt === undefined ? "" : p.prompt }),
          el("td", { text: p.subject === undefined ? "" : p.subject }),
          el("td", { class: "nowrap", text: rows.length ? visible(cols.top1_token[rows[0]]) : "" }),
          el("td", { class: "num", text: rows.length ? short(cols.top1_prob[rows[0]]) : "" }),
          el("td", { class: "nowrap", text: worst === null ? "" : short(cols.rel_change_pct[worst]) + "% (" + cols.source[worst] + ", layer " + cols.layer[worst] + ")" }),
        ]);
        tbody.append(tr);
      }
      table.append(tbody);
      return el("div", { class: "scroll table-box" }, table);
    }

    render();
    return section;
  }

  function lineChart(series, yLabel, onHover) {
    const W = 680, H = 300, m = { l: 64, r: 130, t: 14, b: 42 };
    const svg = svgEl("svg", { class: "chart", viewBox: "0 0 " + W + " " + H, width: W, height: H, role: "img", "aria-label": yLabel + " by layer" });
    const xs = series.flatMap((s) => s.points.map((p) => p.x)), ys = series.flatMap((s) => s.points.map((p) => p.y)).filter(Number.isFinite);
    if (!xs.length) { svg.append(svgEl("text", { x: 20, y: 40 }, "no rows for this window")); return svg; }
    const x0 = Math.min(...xs), x1 = Math.max(...xs);
    let y0 = Math.min(0, ...ys), y1 = Math.max(0, ...ys);
    if (y0 === y1) y1 = y0 + 1;
    const pad = (y1 - y0) * 0.06; y0 -= pad; y1 += pad;
    const X = (x) => m.l + (x1 > x0 ? ((x - x0) / (x1 - x0)) * (W - m.l - m.r) : (W - m.l - m.r) / 2);
    const Y = (y) => m.t + (1 - (y - y0) / (y1 - y0)) * (H - m.t - m.b);
    const axis = { stroke: "#999", "stroke-width": 1 };
    svg.append(svgEl("line", Object.assign({ x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b }, axis)),
      svgEl("line", Object.assign({ x1: m.l, y1: m.t, x2: m.l, y2: H - m.b }, axis)),
      svgEl("line", { x1: m.l, y1: Y(0), x2: W - m.r, y2: Y(0), stroke: "#bbb", "stroke-dasharray": "3 3" }));
    const step = Math.max(1, Math.ceil((x1 - x0 + 1) / 16));
    for (let x = x0; x <= x1; x += step) svg.append(svgEl("text", { x: X(x), y: H - m.b + 16, "text-anchor": "middle", class: "tick" }, x));
    for (let k = 0; k <= 4; k++) {
      const y = y0 + ((y1 - y0) * k) / 4;
      svg.append(svgEl("text", { x: m.l - 6, y: Y(y) + 4, "text-anchor": "end", class: "tick" }, short(y)));
    }
    svg.append(svgEl("text", { x: (m.l + W - m.r) / 2, y: H - 6, "text-anchor": "middle", class: "axis-label" }, "layer"),
      svgEl("text", { x: 14, y: (m.t + H - m.b) / 2, "text-anchor": "middle", class: "axis-label", transform: "rotate(-90 14 " + (m.t + H - m.b) / 2 + ")" }, yLabel));
    series.forEach((s, k) => {
      const pts = s.points.filter((p) => Number.isFinite(p.y));
      svg.append(svgEl("polyline", { points: pts.map((p) => X(p.x) + "," + Y(p.y)).join(" "), fill: "none", stroke: s.colour, "stroke-width": 2 }));
      for (const p of pts) {
        const dot = svgEl("circle", { cx: X(p.x), cy: Y(p.y), r: 3.5, fill: s.colour, class: "point", "data-source": s.name, "data-layer": p.x, "data-value": p.y });
        dot.addEventListener("mouseenter", (ev) => onHover(s, p, ev));
        dot.addEventListener("mouseleave", unhover);
        svg.append(dot);
      }
      const ly = m.t + 10 + k * 18;
      svg.append(svgEl("line", { x1: W - m.r + 12, y1: ly, x2: W - m.r + 30, y2: ly, stroke: s.colour, "stroke-width": 2 }),
        svgEl("text", { x: W - m.r + 36, y: ly + 4, class: "legend-text" }, s.name));
    });
    return svg;
  }

  // ------------------------------------------------------------------ page

  app.textContent = "";
  app.append(el("h1", { text: DATA.title }));
  if (DATA.mask_impact.length) app.append(maskImpactSection(DATA.mask_impact));
  DATA.knockout.forEach((ko, i) => app.append(knockoutSection(ko, i)));
  if (!DATA.mask_impact.length && !DATA.knockout.length) app.append(el("p", { text: "No results." }));
  window.__interpViewReady = performance.now();
})();
