"""The page's stylesheet and script, inline (the policy admits exactly these two by their sha256 hashes).

The script reads the JSON block `#mi-data`, never the network, and builds every element with
`createElement` + `textContent`: untrusted names are never parsed as HTML. Positions and colours are set
through the CSSOM (`el.style.left = …`), which the policy allows, unlike `style` attributes in the markup.
"""

from __future__ import annotations

CSS = r"""
:root{--bg:#ffffff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;--accent:#0969da;
--ok:#1a7f37;--warn:#9a6700;--bad:#cf222e;--tile-fg:#ffffff;color-scheme:light}
:root[data-theme=dark]{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;--card:#151b23;--accent:#4493f8;
--ok:#3fb950;--warn:#d29922;--bad:#f85149;color-scheme:dark}
@media (prefers-color-scheme:dark){:root:not([data-theme=light]){--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;
--line:#3d444d;--card:#151b23;--accent:#4493f8;--ok:#3fb950;--warn:#d29922;--bad:#f85149;color-scheme:dark}}
*{box-sizing:border-box}
body{margin:0;background:var(--bg);color:var(--fg);font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header,main,footer{max-width:1200px;margin:0 auto;padding:0 16px}
header{display:flex;flex-wrap:wrap;align-items:baseline;gap:4px 16px;padding-top:16px}
h1{font-size:22px;margin:0;word-break:break-all}
h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:15px;margin:18px 0 6px}
.sub{color:var(--muted);margin:0;flex:1 1 auto}
#controls-top{margin-left:auto}
button,input{font:inherit;color:inherit;background:var(--card);border:1px solid var(--line);border-radius:6px;
padding:3px 10px}
button{cursor:pointer}button:hover{border-color:var(--accent)}
button[aria-pressed=true]{background:var(--accent);color:#fff;border-color:var(--accent)}
input[type=search]{min-width:min(22rem,70vw)}
.summary{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:0}
.summary dt{font-weight:600}.summary dd{margin:0;word-break:break-all}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:4px 0}
th,td{padding:3px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}
th{font-weight:600;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.tensors td:first-child{word-break:break-all;font-family:ui-monospace,SFMono-Regular,Menlo,monospace;
font-size:12px}
svg.bar{width:120px;height:10px;vertical-align:middle}
.bar-bg{fill:var(--card)}.bar-fg{fill:var(--accent)}
.note,.nojs{color:var(--muted)}
.controls{display:flex;flex-wrap:wrap;gap:8px;align-items:center;margin:6px 0}
.crumbs{display:flex;flex-wrap:wrap;gap:4px;margin:6px 0}
.crumbs button{padding:1px 8px}
#treemap{position:relative;width:100%;height:460px;border:1px solid var(--line);border-radius:6px;overflow:hidden;
background:var(--card)}
.tile{position:absolute;overflow:hidden;border:1px solid var(--bg);color:var(--tile-fg);padding:3px 5px;
font-size:12px;line-height:1.25;cursor:default;text-shadow:0 1px 1px rgba(0,0,0,.45)}
.tile.zoom{cursor:zoom-in}
.tile:focus-visible,.tile:hover{outline:2px solid var(--fg);outline-offset:-2px;z-index:2}
.tile .tname{font-weight:600;word-break:break-all}
.tile.tied{border:2px dashed var(--fg)}
.tile .inner{position:absolute;border:1px solid rgba(255,255,255,.45);pointer-events:none;overflow:hidden;
font-size:11px;padding:1px 3px;filter:brightness(1.12);word-break:break-all}
.tip{position:fixed;z-index:10;max-width:min(420px,90vw);background:var(--bg);color:var(--fg);
border:1px solid var(--line);border-radius:6px;padding:6px 8px;box-shadow:0 4px 16px rgba(0,0,0,.25);
font-size:12px;pointer-events:none;word-break:break-all}
.tip b{display:block}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;margin:6px 0;color:var(--muted)}
.swatch{display:inline-block;width:11px;height:11px;border-radius:2px;margin-right:4px;vertical-align:-1px}
.vbody{height:460px;overflow:auto;border:1px solid var(--line);border-radius:6px;position:relative}
.vhead,.vrow{display:grid;grid-template-columns:minmax(16rem,4fr) 8rem 4.5rem 8rem 6.5rem 6rem minmax(8rem,2fr);
min-width:62rem}
.vhead{position:sticky;top:0;z-index:1;background:var(--card);border-bottom:1px solid var(--line)}
.vhead button{border:0;border-radius:0;background:none;text-align:left;font-weight:600;padding:5px 8px}
.vhead button.num{text-align:right}
.vspace{position:relative;min-width:62rem}
.vrow{position:absolute;left:0;right:0;height:26px;border-bottom:1px solid var(--line)}
.vrow>div{padding:3px 8px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
.vrow>div.num{text-align:right;font-variant-numeric:tabular-nums}
.vrow>div:first-child{font-family:ui-monospace,SFMono-Regular,Menlo,monospace;font-size:12px}
.verdict{font-weight:600;padding:6px 10px;border-radius:6px;border:1px solid currentColor;display:inline-block}
.verdict.ok{color:var(--ok)}.verdict.warn{color:var(--warn)}.verdict.bad{color:var(--bad)}
.chart-box{margin:0;max-width:760px}
svg.chart{width:100%;height:auto;font-size:11px}
svg.chart .axis{stroke:var(--muted)}
svg.chart .tick,svg.chart .legend,svg.chart .gpu-label{fill:var(--muted)}
svg.chart .gpu{stroke:var(--muted);stroke-dasharray:4 4}
svg.chart .line{fill:none;stroke-width:2}
svg.chart .total{stroke:var(--accent);fill:var(--accent)}
svg.chart .kv{stroke:#e15759;fill:#e15759}
svg.chart .weights{stroke:#59a14f;fill:#59a14f}
svg.chart polyline.line,svg.chart line.line{fill:none}
.graph img{max-width:none;background:#fff;border-radius:6px}
footer{color:var(--muted);margin-top:32px;padding-bottom:24px}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
@media (max-width:640px){
#treemap{height:340px}.vbody{height:380px}h1{font-size:18px}
.summary{grid-template-columns:1fr}.summary dt{margin-top:4px}svg.bar{width:60px}}
@media print{
#controls-top,.controls,.crumbs,#tm-tip{display:none!important}
#tensor-ui{display:none!important}#tensor-static[hidden]{display:block!important}
#treemap{break-inside:avoid;border-color:#999}.tile,.tile .inner,.swatch,.bar-fg{-webkit-print-color-adjust:exact;
print-color-adjust:exact}
body{font-size:11px}.graph img{max-width:100%}
h2{break-after:avoid}section{break-inside:auto}}
"""

JS = r"""
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("mi-data").textContent);
  var doc = document.documentElement;

  function el(tag, cls, text) {
    var n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }
  function fmtBytes(n) {
    var u = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(n) >= 1024 && i < u.length - 1) { n /= 1024; i++; }
    return i === 0 ? Math.floor(n) + " B" : n.toFixed(1) + " " + u[i];
  }
  function fmtCount(n) {
    if (Math.abs(n) < 1000) return String(Math.floor(n));
    var u = ["K", "M", "B", "T"], i = -1;
    while ((Math.abs(n) >= 1000 || i < 0) && i < u.length - 1) { n /= 1000; i++; }
    return n.toFixed(1) + u[i];
  }
  function pct(x) { return (100 * x).toFixed(1) + "%"; }
  function grouped(n) { return Number(n).toLocaleString("en-US"); }

  // ---- theme ---------------------------------------------------------------------------------------
  var themeBtn = el("button", "theme", "dark / light theme");
  themeBtn.type = "button";
  themeBtn.addEventListener("click", function () {
    var dark = doc.dataset.theme ? doc.dataset.theme === "dark"
      : window.matchMedia("(prefers-color-scheme: dark)").matches;
    doc.dataset.theme = dark ? "light" : "dark";
  });
  document.getElementById("controls-top").appendChild(themeBtn);
  Array.prototype.forEach.call(document.querySelectorAll(".nojs"), function (n) { n.hidden = true; });

  // ---- treemap -------------------------------------------------------------------------------------
  var PALETTE = ["#4e79a7", "#e8772e", "#59a14f", "#c9474a", "#5a9e9a", "#b8952a", "#9a6a94", "#d1737f",
    "#8c6a55", "#6f7a85"];
  var colours = {};
  var used = 0;
  function colour(d) {
    if (!d) return "#6f7a85";
    if (!(d in colours)) colours[d] = PALETTE[used++ % PALETTE.length];
    return colours[d];
  }
  (function seedColours(n) { // dtypes get their colour in order of bytes, so the main one is always blue
    var acc = {};
    var t = data.tensors;
    for (var i = 0; i < t.dtype.length; i++) acc[t.dtype[i]] = (acc[t.dtype[i]] || 0) + t.bytes[i];
    Object.keys(acc).sort(function (a, b) { return acc[b] - acc[a]; }).forEach(colour);
  })();

  var MAX_TILES = 1500;
  var metric = "b";
  var totals = { b: data.bytes || 1, p: data.params || 1 };
  var stack = [{ node: data.tree, k: 1, label: "(all)", blocks: false, block: false }];
  var box = document.getElementById("treemap");
  var tip = document.getElementById("tm-tip");
  var crumbs = document.getElementById("tm-crumbs");
  var legend = document.getElementById("tm-legend");
  var controls = document.getElementById("tm-controls");

  function value(v) { return v.node[metric] * v.k; }
  function blockName(n, i) {
    var m = /^(.*)\.(\d+)-(\d+)$/.exec(n.f);
    if (m && Number(m[3]) - Number(m[2]) + 1 === n.r) return m[1] + "." + (Number(m[2]) + i);
    return n.f + " #" + (i + 1);
  }
  function kids(v) {
    var n = v.node;
    if (v.blocks) {
      var out = [];
      for (var i = 0; i < n.r; i++) {
        out.push({ node: n, k: v.k / n.r, label: blockName(n, i), block: true, blocks: false });
      }
      return out;
    }
    return (n.c || []).map(function (c) { return { node: c, k: v.k, label: c.n, block: false, blocks: false }; });
  }
  function zoomable(v) { return !!(v.node.c && v.node.c.length) || (v.node.r > 1 && !v.block); }

  function worst(row, side) {
    var s = 0, mx = 0, mn = Infinity;
    for (var i = 0; i < row.length; i++) { s += row[i].a; mx = Math.max(mx, row[i].a); mn = Math.min(mn, row[i].a); }
    var s2 = s * s, q = side * side;
    return Math.max(q * mx / s2, s2 / (q * mn));
  }
  // Squarified treemap (Bruls, Huizing, van Wijk 2000): rows along the short side, kept while they improve.
  function squarify(items, x, y, w, h) {
    var sum = 0, out = [];
    items.forEach(function (it) { sum += it.v; });
    if (sum <= 0 || w <= 0 || h <= 0) return out;
    var scale = w * h / sum, i = 0;
    var rest = items.map(function (it) { return { it: it, a: it.v * scale }; });
    while (i < rest.length) {
      var side = Math.min(w, h), row = [rest[i]], best = worst(row, side);
      i++;
      while (i < rest.length) {
        var cand = row.concat([rest[i]]), r = worst(cand, side);
        if (r > best) break;
        row = cand; best = r; i++;
      }
      var ra = 0;
      row.forEach(function (c) { ra += c.a; });
      var thick = ra / side, pos;
      if (w >= h) {
        pos = y;
        row.forEach(function (c) {
          var hh = c.a / thick;
          out.push({ it: c.it, x: x, y: pos, w: thick, h: hh });
          pos += hh;
        });
        x += thick; w -= thick;
      } else {
        pos = x;
        row.forEach(function (c) {
          var ww = c.a / thick;
          out.push({ it: c.it, x: pos, y: y, w: ww, h: thick });
          pos += ww;
        });
        y += thick; h -= thick;
      }
    }
    return out;
  }

  function tipLines(v) {
    var n = v.node, lines = [];
    lines.push(["name", v.block ? v.label : (n.f || v.label)]);
    if (n.r > 1 && !v.block) lines.push(["blocks", "×" + n.r + " (" + fmtCount(n.p / n.r) + " params each)"]);
    if (n.s) lines.push(["shape", n.s]);
    if (n.d) lines.push(["dtype", n.d]);
    lines.push(["params", grouped(Math.round(n.p * v.k)) + " (" + fmtCount(n.p * v.k) + ")"]);
    lines.push(["bytes", grouped(Math.round(n.b * v.k)) + " (" + fmtBytes(n.b * v.k) + ")"]);
    lines.push(["share", pct(n.p * v.k / totals.p) + " of params, " + pct(n.b * v.k / totals.b) + " of bytes"]);
    if (n.t) lines.push(["tied", n.t]);
    return lines;
  }
  function showTip(v, ev) {
    tip.textContent = "";
    tipLines(v).forEach(function (l, i) {
      var row = el(i === 0 ? "b" : "div", null, i === 0 ? l[1] : l[0] + ": " + l[1]);
      tip.appendChild(row);
    });
    tip.hidden = false;
    moveTip(ev);
  }
  function moveTip(ev) {
    var x = ev.clientX + 14, y = ev.clientY + 14;
    var r = tip.getBoundingClientRect();
    if (x + r.width > window.innerWidth - 4) x = Math.max(4, ev.clientX - r.width - 14);
    if (y + r.height > window.innerHeight - 4) y = Math.max(4, ev.clientY - r.height - 14);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  }

  function zoomInto(v) {
    if (!zoomable(v)) return;
    stack.push(v);
    draw();
  }
  function drawCrumbs() {
    crumbs.textContent = "";
    stack.forEach(function (v, i) {
      var b = el("button", null, i === 0 ? "all" : (v.block ? v.label : v.node.n));
      b.type = "button";
      if (i === stack.length - 1) b.setAttribute("aria-current", "true");
      b.addEventListener("click", function () { stack.length = i + 1; draw(); });
      crumbs.appendChild(b);
    });
    var cur = stack[stack.length - 1];
    if (cur.node.r > 1 && !cur.block) {
      var what = cur.blocks ? "show the blocks summed" : "show the " + cur.node.r + " blocks one by one";
      var t = el("button", "blocks", what);
      t.type = "button";
      t.setAttribute("aria-pressed", cur.blocks ? "true" : "false");
      t.addEventListener("click", function () { cur.blocks = !cur.blocks; draw(); });
      crumbs.appendChild(t);
    }
  }
  function drawLegend(items) {
    legend.textContent = "";
    var seen = {};
    items.forEach(function (v) { if (v.node.d) seen[v.node.d] = true; });
    Object.keys(seen).forEach(function (d) {
      var s = el("span");
      var sw = el("span", "swatch");
      sw.style.background = colour(d);
      s.appendChild(sw);
      s.appendChild(document.createTextNode(d));
      legend.appendChild(s);
    });
    legend.appendChild(el("span", null, "dashed border: tied or shared storage (counted once)"));
  }
  function draw() {
    var cur = stack[stack.length - 1];
    var items = kids(cur).map(function (v) { return { v: value(v), view: v }; })
      .filter(function (it) { return it.v > 0; })
      .sort(function (a, b) { return b.v - a.v; });
    if (items.length > MAX_TILES) { // a flat file of many thousand tensors: the smallest become one tile
      var restSum = { p: 0, b: 0 }, rest = items.splice(MAX_TILES - 1);
      rest.forEach(function (it) { restSum.p += it.view.node.p * it.view.k; restSum.b += it.view.node.b * it.view.k; });
      var other = { n: rest.length.toLocaleString("en-US") + " smaller", f: "", p: restSum.p, b: restSum.b };
      items.push({ v: restSum[metric], view: { node: other, k: 1, label: other.n, block: false, blocks: false } });
    }
    var W = box.clientWidth, H = box.clientHeight;
    box.textContent = "";
    squarify(items, 0, 0, W, H).forEach(function (r) {
      var v = r.it.view, n = v.node;
      var t = el("div", "tile");
      t.style.left = r.x + "px"; t.style.top = r.y + "px";
      t.style.width = Math.max(r.w, 0) + "px"; t.style.height = Math.max(r.h, 0) + "px";
      t.style.background = colour(n.d);
      var name = v.block ? v.label : n.n;
      var share = value(v) / totals[metric];
      t.dataset.name = name;
      t.dataset.share = share.toFixed(6);
      t.dataset.params = String(Math.round(n.p * v.k));
      t.dataset.bytes = String(Math.round(n.b * v.k));
      if (n.t) t.classList.add("tied");
      t.tabIndex = 0;
      if (zoomable(v)) { t.classList.add("zoom"); t.setAttribute("role", "button"); }
      t.setAttribute("aria-label", name + ", " + pct(share));
      if (r.w > 34 && r.h > 16) {
        // A block's tile says its number; the tooltip and data-name keep the full name.
        var tlabel = v.block ? name.slice(name.lastIndexOf(".") + 1) : name;
        t.appendChild(el("div", "tname", tlabel + (n.t ? " \u26d3" : "")));
        var amount = metric === "b" ? fmtBytes(value(v)) : fmtCount(value(v));
        if (r.h > 30) t.appendChild(el("div", "tshare", pct(share) + " \u00b7 " + amount));
      }
      box.appendChild(t);
      // One level down, drawn inside under the label: the first picture already shows the structure.
      var room = zoomable(v) && r.w > 60 && r.h > 56 && t.lastChild; // measured only where it is drawn
      var label = room ? t.lastChild.offsetTop + t.lastChild.offsetHeight + 2 : 0;
      if (label && r.h > label + 20) {
        var sub = kids(v).map(function (c) { return { v: value(c), view: c }; })
          .filter(function (it) { return it.v > 0; })
          .sort(function (a, b) { return b.v - a.v; });
        squarify(sub, 3, label, r.w - 8, r.h - label - 4).forEach(function (q) {
          var d = el("div", "inner");
          d.style.left = q.x + "px"; d.style.top = q.y + "px";
          d.style.width = Math.max(q.w - 1, 0) + "px"; d.style.height = Math.max(q.h - 1, 0) + "px";
          d.style.background = colour(q.it.view.node.d);
          if (q.w > 46 && q.h > 16) d.textContent = q.it.view.block ? q.it.view.label : q.it.view.node.n;
          t.appendChild(d);
        });
      }
      t.addEventListener("mouseenter", function (ev) { showTip(v, ev); });
      t.addEventListener("mousemove", moveTip);
      t.addEventListener("mouseleave", function () { tip.hidden = true; });
      t.addEventListener("click", function () { tip.hidden = true; zoomInto(v); });
      t.addEventListener("keydown", function (ev) {
        if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); zoomInto(v); }
      });
    });
    drawCrumbs();
    drawLegend(items.map(function (it) { return it.view; }));
  }
  box.addEventListener("keydown", function (ev) {
    if ((ev.key === "Escape" || ev.key === "Backspace") && stack.length > 1) { stack.pop(); draw(); }
  });
  [["b", "size by bytes"], ["p", "size by parameters"]].forEach(function (m) {
    var b = el("button", null, m[1]);
    b.type = "button";
    b.dataset.metric = m[0];
    b.setAttribute("aria-pressed", m[0] === metric ? "true" : "false");
    b.addEventListener("click", function () {
      metric = m[0];
      Array.prototype.forEach.call(controls.querySelectorAll("button"), function (x) {
        x.setAttribute("aria-pressed", x.dataset.metric === metric ? "true" : "false");
      });
      draw();
    });
    controls.appendChild(b);
  });
  document.getElementById("treemap-ui").hidden = false;
  var resizeTimer = 0;
  window.addEventListener("resize", function () {
    window.clearTimeout(resizeTimer);
    resizeTimer = window.setTimeout(draw, 80);
  });
  draw();

  // ---- tensor table: virtualised rows, sort, filter ----------------------------------------------------
  var T = data.tensors, N = T.name.length, ROW = 26;
  var cols = [["name", "name", false], ["shape", "shape", false], ["dtype", "dtype", false],
    ["numel", "elements", true], ["bytes", "bytes", true], ["section", "section", false], ["shared", "shares", false]];
  var order = [], shown = [], sortKey = null, sortDir = 1;
  for (var i = 0; i < N; i++) order.push(i);
  var head = document.getElementById("tensor-head");
  var body = document.getElementById("tensor-body");
  var space = document.getElementById("tensor-space");
  var count = document.getElementById("tensor-count");
  var filter = document.getElementById("tensor-filter");
  cols.forEach(function (c) {
    var b = el("button", c[2] ? "num" : null, c[1]);
    b.type = "button";
    b.dataset.key = c[0];
    b.addEventListener("click", function () {
      sortDir = sortKey === c[0] ? -sortDir : (c[2] ? -1 : 1);
      sortKey = c[0];
      var col = T[c[0]], dir = sortDir;
      order.sort(c[2] ? function (a, b) { return dir * (col[a] - col[b]) || a - b; }
        : function (a, b) { return dir * (col[a] < col[b] ? -1 : col[a] > col[b] ? 1 : 0) || a - b; });
      Array.prototype.forEach.call(head.children, function (x) {
        x.setAttribute("aria-sort", x.dataset.key === sortKey ? (sortDir > 0 ? "ascending" : "descending") : "none");
        x.textContent = cols.filter(function (cc) { return cc[0] === x.dataset.key; })[0][1]
          + (x.dataset.key === sortKey ? (sortDir > 0 ? " \u25b2" : " \u25bc") : "");
      });
      apply();
    });
    head.appendChild(b);
  });
  function matcher(q) {
    q = q.trim();
    if (!q) return null;
    if (/[*?\[]/.test(q)) {
      var re = "";
      for (var j = 0; j < q.length; j++) {
        var ch = q[j];
        re += ch === "*" ? ".*" : ch === "?" ? "." : /[\\^$.|+(){}\[\]]/.test(ch) ? "\\" + ch : ch;
      }
      var rx = new RegExp("^" + re + "$", "is"); // s: a name may hold line separators
      return function (k) { return rx.test(T.name[k]); };
    }
    var low = q.toLowerCase();
    return function (k) { return T.name[k].toLowerCase().indexOf(low) >= 0 || T.dtype[k] === low; };
  }
  var drawn = -1;
  function apply() {
    var m = matcher(filter.value);
    shown = m ? order.filter(m) : order.slice();
    count.textContent = grouped(shown.length) + " of " + grouped(N) + " tensors";
    count.dataset.shown = String(shown.length);
    space.style.height = shown.length * ROW + "px";
    drawn = -1;
    rows();
  }
  function rows() {
    var headH = head.offsetHeight;
    var top = Math.max(0, body.scrollTop - headH);
    var first = Math.max(0, Math.floor(top / ROW) - 10);
    if (first === drawn) return;
    drawn = first;
    var last = Math.min(shown.length, first + Math.ceil(body.clientHeight / ROW) + 20);
    space.textContent = "";
    var frag = document.createDocumentFragment();
    for (var r = first; r < last; r++) {
      var k = shown[r], row = el("div", "vrow");
      row.style.top = r * ROW + "px";
      row.dataset.i = String(k);
      var cells = [T.name[k], T.shape[k], T.dtype[k], grouped(T.numel[k]), fmtBytes(T.bytes[k]), T.section[k],
        T.shared[k]];
      cells.forEach(function (c, ci) {
        var d = el("div", cols[ci][2] ? "num" : null, c);
        if (ci === 0 || ci === 6) d.title = c;
        row.appendChild(d);
      });
      frag.appendChild(row);
    }
    space.appendChild(frag);
  }
  var pending = false;
  body.addEventListener("scroll", function () {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(function () { pending = false; rows(); });
  });
  filter.addEventListener("input", function () { body.scrollTop = 0; apply(); });
  document.getElementById("tensor-ui").hidden = false;
  document.getElementById("tensor-static").hidden = true;
  apply();

  window.__miReady = performance.now();
  document.body.dataset.ready = "1";
})();
"""
