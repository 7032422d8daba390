/* evalkit results viewer: a static page that runs from disk (file://).
 * Data arrives as <script> files calling EVK.site / EVK.index / EVK.chunk / EVK.rescore
 * (browsers refuse fetch() from file://). Nothing is loaded from the network. */
(function () {
  "use strict";

  var FLAGS = { wrong: 1, no_answer: 2, truncated: 4, censored: 8, error: 16, post_cutoff: 32, disagree: 64, judged: 128 };
  var FILTERS = [
    ["wrong", "Wrong"], ["no_answer", "No answer"], ["truncated", "Truncated"], ["censored", "Censored"],
    ["error", "Error"], ["post_cutoff", "Post-cutoff"], ["disagree", "Scorers disagree"], ["judged", "Judged"]
  ];
  var PAGE = 100;
  var state = {
    site: null, indexes: {}, chunks: {}, rescores: {}, loading: {},
    raw: localStorage.getItem("evk-raw") === "1",
    sort: { key: null, dir: 1 }, cursor: 0, fulltext: {}
  };
  var app = document.getElementById("app");

  // ---------------------------------------------------------------- data loading
  function loadScript(src) {
    if (state.loading[src]) return state.loading[src];
    state.loading[src] = new Promise(function (resolve, reject) {
      var s = document.createElement("script");
      s.src = src;
      s.onload = function () { resolve(); };
      s.onerror = function () { delete state.loading[src]; reject(new Error("cannot load " + src)); };
      document.head.appendChild(s);
    });
    return state.loading[src];
  }
  function pad4(n) { return ("000" + n).slice(-4); }
  function loadIndex(run, task) {
    var key = run + "/" + task;
    if (state.indexes[key]) return Promise.resolve(state.indexes[key]);
    return loadScript("data/" + run + "/" + task + "/index.js").then(function () { return state.indexes[key]; });
  }
  function loadChunk(run, task, n) {
    var key = run + "/" + task + "#" + n;
    if (state.chunks[key]) return Promise.resolve(state.chunks[key]);
    return loadScript("data/" + run + "/" + task + "/chunk-" + pad4(n) + ".js").then(function () { return state.chunks[key]; });
  }
  function loadItem(run, task, i) {
    return loadIndex(run, task).then(function (ix) {
      var n = Math.floor(i / ix.chunk_size);
      return loadChunk(run, task, n).then(function (items) { return items[i - n * ix.chunk_size]; });
    });
  }

  window.EVK = {
    site: function (d) { state.site = d; route(); },
    index: function (key, d) { state.indexes[key] = d; },
    chunk: function (key, n, items) { state.chunks[key + "#" + n] = items; },
    rescore: function (run, d) { state.rescores[run] = d; }
  };

  // ---------------------------------------------------------------- helpers
  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(v, digits) {
    if (v == null || v !== v) return "–";
    return Number(v).toFixed(digits == null ? 1 : digits);
  }
  function int(v) { return v == null ? "–" : Number(v).toLocaleString("en-US"); }
  function compact(v) {
    if (v == null) return "–";
    if (v >= 1e9) return (v / 1e9).toFixed(1) + "B";
    if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
    if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
    return String(v);
  }
  function params(b) {
    if (b == null) return "–";
    if (b < 1) return Math.round(b * 1000) + "M";
    return (b < 10 ? num(b, 1) : num(b, 0)) + "B";
  }
  function runById(slug) {
    var runs = state.site.runs;
    for (var i = 0; i < runs.length; i++) if (runs[i].slug === slug) return runs[i];
    return null;
  }
  function parseHash() {
    var h = location.hash.replace(/^#\/?/, "");
    var q = {};
    var qi = h.indexOf("?");
    if (qi >= 0) {
      h.slice(qi + 1).split("&").forEach(function (kv) {
        if (!kv) return;
        var p = kv.split("=");
        q[decodeURIComponent(p[0])] = decodeURIComponent(p.slice(1).join("=") || "");
      });
      h = h.slice(0, qi);
    }
    return { parts: h ? h.split("/").map(decodeURIComponent) : [], q: q };
  }
  function hashFor(parts, q) {
    var s = "#/" + parts.map(encodeURIComponent).join("/");
    var keys = Object.keys(q || {}).filter(function (k) { return q[k] !== "" && q[k] != null; });
    if (keys.length) s += "?" + keys.map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(q[k]); }).join("&");
    return s;
  }
  function verdictPill(v) {
    var label = { right: "right", wrong: "wrong", none: "no answer", error: "error", ungraded: "ungraded" }[v] || v;
    return '<span class="pill v-' + esc(v) + '">' + esc(label) + "</span>";
  }
  function setView(name) {
    document.documentElement.setAttribute("data-view", name);
    document.documentElement.removeAttribute("data-ready");
    var links = document.querySelectorAll("#nav a");
    for (var i = 0; i < links.length; i++) links[i].classList.toggle("active", links[i].getAttribute("data-view") === name);
  }
  function ready() { document.documentElement.setAttribute("data-ready", "1"); }

  // Math: KaTeX auto-render over text; "$" delimiters only where the text is not about money.
  function mathBlock(text, cls) {
    return '<div class="tex ' + (cls || "") + '">' + esc(text) + "</div>";
  }
  function renderMath(root) {
    if (state.raw || !window.renderMathInElement) return;
    var blocks = root.querySelectorAll(".tex");
    for (var i = 0; i < blocks.length; i++) {
      var el = blocks[i], t = el.textContent;
      var money = /\$\d[\d,.]*(\s|$|[).,;])/.test(t) && !/\$[^$\n]*\\[a-zA-Z]+/.test(t);
      var delims = [
        { left: "$$", right: "$$", display: true }, { left: "\\[", right: "\\]", display: true },
        { left: "\\(", right: "\\)", display: false }
      ];
      if (!money) delims.push({ left: "$", right: "$", display: false });
      try { window.renderMathInElement(el, { delimiters: delims, throwOnError: false, strict: "ignore" }); } catch (e) { /* raw stays */ }
    }
  }
  function updateMathButton() {
    document.getElementById("math-toggle").textContent = state.raw ? "Math: raw" : "Math: rendered";
  }
  document.getElementById("math-toggle").addEventListener("click", function () {
    state.raw = !state.raw;
    localStorage.setItem("evk-raw", state.raw ? "1" : "0");
    updateMathButton();
    route();
  });

  // ---------------------------------------------------------------- router
  function route() {
    if (!state.site) return;
    updateMathButton();
    var h = parseHash();
    var p = h.parts;
    try {
      if (p[0] === "frontier") return viewFrontier();
      if (p[0] === "task" && p.length >= 3) return viewTask(p[1], p[2], h.q);
      if (p[0] === "compare") return viewCompare(h.q);
      if (p[0] === "rescore" && p[1]) return viewRescore(p[1], h.q);
      if (p[0] === "cutoff") return viewCutoff();
      return viewLeaderboard();
    } catch (e) {
      app.innerHTML = '<p class="error">' + esc(e.message) + "</p>";
      throw e;
    }
  }
  window.addEventListener("hashchange", route);

  // ---------------------------------------------------------------- leaderboard
  function scorerNames(rows) {
    var seen = {};
    rows.forEach(function (r) { Object.keys(r.scorers || {}).forEach(function (k) { seen[k] = 1; }); });
    return Object.keys(seen).sort();
  }
  function scoreCell(v, lo, hi, points) {
    if (v == null) return '<td class="num">–</td>';
    var max = points ? 150 : 100;
    var w = Math.max(0, Math.min(100, (v / max) * 100));
    var ci = "";
    var bar = '<span class="bar"><span class="fill" style="width:' + w.toFixed(1) + '%"></span>';
    if (lo != null && hi != null) {
      ci = '<span class="ci">' + num(lo) + "–" + num(hi) + "</span>";
      bar += '<span class="whisker" style="left:' + (lo / max * 100).toFixed(1) + "%;width:" + ((hi - lo) / max * 100).toFixed(1) + '%"></span>';
    }
    bar += "</span>";
    return '<td class="score" data-v="' + v + '"><span class="val">' + num(v) + "</span>" + ci + bar + "</td>";
  }
  function viewLeaderboard() {
    setView("leaderboard");
    var s = state.site, rows = s.leaderboard.slice();
    var scorers = scorerNames(rows);
    var anyCensored = rows.some(function (r) { return r.censored != null; });
    var anyJudged = rows.some(function (r) { return r.judged; });
    var cols = [
      ["name", "Model", "text"], ["task", "Task", "text"], ["score", "Score (95% CI)", "text"], ["n", "n", "num"],
      ["errors", "Errors", "num"], ["truncated", "Truncated", "num"], ["no_answer", "No answer", "num"]
    ];
    if (anyCensored) cols.push(["censored", "Censored", "num"]);
    scorers.forEach(function (k) { cols.push(["scorer:" + k, k, "num"]); });
    if (anyJudged) cols.push(["judge_accuracy", "Judge / rules", "num"]);
    cols.push(["params", "Params", "num"], ["tokens", "Tokens", "num"], ["run_id", "Run", "text"]);
    var sk = state.sort.key;
    function val(r, k) {
      if (k.indexOf("scorer:") === 0) { var sc = r.scorers[k.slice(7)]; return sc ? sc.score : null; }
      return r[k];
    }
    if (sk) {
      rows.sort(function (a, b) {
        var x = val(a, sk), y = val(b, sk);
        if (x == null && y == null) return 0;
        if (x == null) return 1;
        if (y == null) return -1;
        return (x < y ? -1 : x > y ? 1 : 0) * state.sort.dir;
      });
    } else {
      rows.sort(function (a, b) { return a.task < b.task ? -1 : a.task > b.task ? 1 : (b.score || 0) - (a.score || 0); });
    }
    var head = cols.map(function (c) {
      var arrow = sk === c[0] ? (state.sort.dir > 0 ? " ▲" : " ▼") : "";
      return '<th class="' + c[2] + ' sortable" data-key="' + esc(c[0]) + '" aria-sort="' + (sk === c[0] ? (state.sort.dir > 0 ? "ascending" : "descending") : "none") + '">' + esc(c[1]) + '<span class="arrow">' + arrow + "</span></th>";
    }).join("");
    var body = rows.map(function (r) {
      var link = hashFor(["task", r.run, r.task], {});
      var cells = [
        '<td class="model"><a href="' + link + '">' + esc(r.name) + "</a></td>",
        '<td><a class="task" href="' + link + '">' + esc(r.task) + "</a>" + (r.split && r.split !== "all" ? ' <span class="tag">' + esc(r.split) + "</span>" : "") + "</td>",
        scoreCell(r.score, r.ci_low, r.ci_high, r.points),
        '<td class="num">' + int(r.n) + "</td>",
        '<td class="num' + (r.errors ? " warn" : "") + '">' + int(r.errors) + "</td>",
        '<td class="num' + (r.truncated ? " warn" : "") + '">' + int(r.truncated) + "</td>",
        '<td class="num">' + int(r.no_answer) + "</td>"
      ];
      if (anyCensored) cells.push('<td class="num">' + (r.censored == null ? "–" : int(r.censored)) + "</td>");
      scorers.forEach(function (k) {
        var sc = r.scorers[k];
        cells.push('<td class="num">' + (sc ? num(sc.score) + (sc.ci_low != null ? ' <span class="ci">' + num(sc.ci_low) + "–" + num(sc.ci_high) + "</span>" : "") : "–") + "</td>");
      });
      if (anyJudged) {
        cells.push('<td class="num" title="accuracy by the judge model / by the rule-based grader, on the judged records">' + (r.judged ? num(r.judge_accuracy) + " / " + num(r.rule_accuracy_judged) + ' <span class="ci">n=' + int(r.judged) + "</span>" : "–") + "</td>");
      }
      cells.push('<td class="num">' + params(r.params) + "</td>");
      cells.push('<td class="num">' + compact(r.tokens) + "</td>");
      cells.push('<td class="runid">' + esc(r.run_id) + "</td>");
      return "<tr>" + cells.join("") + "</tr>";
    }).join("");
    var metricNote = rows.length ? "Scores are " + uniq(rows.map(function (r) { return r.metric; })).join(", ") + " in percent (points for points metrics), with 95% intervals." : "";
    app.innerHTML =
      '<section class="page"><h1>Leaderboard</h1><p class="lede">' + esc(metricNote) +
      " Click a header to sort; click a model or task to browse its items.</p>" +
      '<div class="table-wrap"><table class="board" id="leaderboard"><thead><tr>' + head + "</tr></thead><tbody>" + body + "</tbody></table></div>" +
      runsTable() + licenceTable() + notesList(s.notes) + "</section>";
    var ths = app.querySelectorAll("th.sortable");
    for (var i = 0; i < ths.length; i++) {
      ths[i].addEventListener("click", function (ev) {
        var k = ev.currentTarget.getAttribute("data-key");
        if (state.sort.key === k) state.sort.dir = -state.sort.dir;
        else { state.sort.key = k; state.sort.dir = (k === "name" || k === "task" || k === "run_id") ? 1 : -1; }
        viewLeaderboard();
      });
    }
    ready();
  }
  function uniq(a) { return a.filter(function (v, i) { return a.indexOf(v) === i; }); }
  function runsTable() {
    var rows = state.site.runs.map(function (r) {
      var tasks = r.tasks.map(function (t) { return '<a href="' + hashFor(["task", r.slug, t], {}) + '">' + esc(t) + "</a>"; }).join(", ");
      var extra = r.rescore ? ' · <a href="' + hashFor(["rescore", r.slug], {}) + '">rescore changes</a>' : "";
      return "<tr><td class=\"runid\">" + esc(r.run_id) + "</td><td>" + esc(r.model) + "</td><td>" + tasks + extra +
        "</td><td>" + esc(r.status || "") + "</td><td>" + esc((r.finished || r.started || "").slice(0, 16).replace("T", " ")) +
        "</td><td>" + (r.cutoff ? esc(r.cutoff) : '<span class="muted">unknown</span>') + '</td><td class="path">' + esc(r.path) + "</td></tr>";
    }).join("");
    return '<h2>Runs</h2><div class="table-wrap"><table class="plain"><thead><tr><th>Run</th><th>Model</th><th>Tasks</th><th>Status</th><th>Finished</th><th>Cutoff</th><th>Folder</th></tr></thead><tbody>' + rows + "</tbody></table></div>";
  }
  function licenceTable() {
    var t = state.site.tasks;
    var rows = Object.keys(t).sort().map(function (k) {
      return "<tr><td>" + esc(k) + "</td><td>" + esc(t[k].licence) + '</td><td class="muted">' + esc(t[k].description || "") + "</td></tr>";
    }).join("");
    return '<h2>Datasets</h2><div class="table-wrap"><table class="plain"><thead><tr><th>Task</th><th>Licence</th><th>Description</th></tr></thead><tbody>' + rows + "</tbody></table></div>";
  }
  function notesList(notes) {
    if (!notes || !notes.length) return "";
    return '<ul class="notes">' + notes.map(function (n) { return "<li>" + esc(n) + "</li>"; }).join("") + "</ul>";
  }

  // ---------------------------------------------------------------- frontier
  function viewFrontier() {
    setView("frontier");
    var charts = state.site.frontier;
    var html = '<section class="page"><h1>Frontier</h1><p class="lede">Score versus parameter count with the Pareto frontier; published scores from the catalog and your runs (stars). Run labels link to their items.</p>';
    if (!charts.length) html += '<p class="muted">No chart: the runs have no task with published scores or parameter counts.</p>';
    charts.forEach(function (c) {
      html += '<article class="chart"><h2>' + esc(c.task) + "</h2>";
      html += c.svg ? '<div class="svg">' + c.svg + "</div>" : "";
      if (c.runs.length) {
        html += '<p class="runs">Your runs: ' + c.runs.map(function (r) {
          return '<a href="' + hashFor(["task", r.run, c.task], {}) + '">' + esc(r.label) + " (" + num(r.score) + ")</a>";
        }).join(" · ") + "</p>";
      }
      html += notesList(c.notes) + "</article>";
    });
    app.innerHTML = html + "</section>";
    ready();
  }

  // ---------------------------------------------------------------- cutoff
  function ciText(v, lo, hi, signed) {
    if (v == null) return "–";
    var f = function (x) { return (signed && x > 0 ? "+" : "") + num(x); };
    return f(v) + (lo != null ? ' <span class="ci">' + f(lo) + " to " + f(hi) + "</span>" : "");
  }
  function gapBar(r) {
    // pre and post as dots with whiskers on one 0-100 axis
    function mark(v, lo, hi, cls) {
      if (v == null) return "";
      return '<span class="gw ' + cls + '" style="left:' + lo + "%;width:" + Math.max(0.5, hi - lo) + '%"></span><span class="gd ' + cls + '" style="left:' + v + '%"></span>';
    }
    return '<span class="gapbar">' + mark(r.pre_score, r.pre_ci_low, r.pre_ci_high, "pre") + mark(r.post_score, r.post_ci_low, r.post_ci_high, "post") + "</span>";
  }
  function viewCutoff() {
    setView("cutoff");
    var s = state.site;
    var rows = s.cutoff.map(function (r) {
      return "<tr><td class=\"model\">" + esc(r.model) + "</td><td><a href=\"" + hashFor(["task", r.run, r.task], { f: "post_cutoff" }) + "\">" + esc(r.task) + "</a></td><td>" + esc(r.cutoff) +
        '</td><td class="num">' + int(r.pre_n) + '</td><td class="num">' + ciText(r.pre_score, r.pre_ci_low, r.pre_ci_high) +
        '</td><td class="num">' + int(r.post_n) + '</td><td class="num">' + ciText(r.post_score, r.post_ci_low, r.post_ci_high) +
        '</td><td class="num gap">' + ciText(r.gap, r.gap_ci_low, r.gap_ci_high, true) + "</td><td>" + gapBar(r) +
        '</td><td class="num">' + int(r.n_undated) + '</td><td class="muted">' + esc(r.warning || "") + "</td></tr>";
    }).join("");
    var html = '<section class="page"><h1>Pre- and post-cutoff</h1><p class="lede">Each run split at its model\'s training cutoff: strict accuracy in percent on items dated on or before the cutoff (pre) and after it (post). A large positive gap (pre − post) is a contamination signal. <span class="key"><span class="gd pre"></span> pre <span class="gd post"></span> post</span></p>';
    html += rows ? '<div class="table-wrap"><table class="board" id="cutoff"><thead><tr><th>Model</th><th>Task</th><th>Cutoff</th><th class="num">Pre n</th><th class="num">Pre (95% CI)</th><th class="num">Post n</th><th class="num">Post (95% CI)</th><th class="num">Gap (95% CI)</th><th>0 – 100</th><th class="num">Undated</th><th>Note</th></tr></thead><tbody>' + rows + "</tbody></table></div>" : '<p class="muted">No run has a known cutoff and dated items.</p>';
    if (s.cutoff_missing.length) {
      html += "<h2>Runs without a cutoff view</h2>" + notesList(s.cutoff_missing.map(function (m) { return m.model + ": " + m.reason; }));
    }
    app.innerHTML = html + "</section>";
    ready();
  }

  // ---------------------------------------------------------------- item browser
  function facetLabel(ix, row) {
    return ix.facets.map(function (f, k) { return f.values[row[4][k]]; }).filter(Boolean).join(" · ");
  }
  function matches(ix, row, i, q, key) {
    var f = q.f ? q.f.split(",") : [];
    for (var k = 0; k < f.length; k++) if (FLAGS[f[k]] && !(row[3] & FLAGS[f[k]])) return false;
    for (var j = 0; j < ix.facets.length; j++) {
      var want = q["facet" + j];
      if (want != null && want !== "" && ix.facets[j].values[row[4][j]] !== want) return false;
    }
    if (q.q) {
      var needle = q.q.toLowerCase();
      var hay = (row[0] + " " + row[6] + " " + row[7] + " " + row[8]).toLowerCase();
      if (hay.indexOf(needle) < 0) {
        var full = state.fulltext[key];
        if (!(q.deep && full && full[i] && full[i].indexOf(needle) >= 0)) return false;
      }
    }
    return true;
  }
  function filterCounts(ix) {
    var c = {};
    FILTERS.forEach(function (f) { c[f[0]] = 0; });
    ix.rows.forEach(function (r) { FILTERS.forEach(function (f) { if (r[3] & FLAGS[f[0]]) c[f[0]]++; }); });
    return c;
  }
  function viewTask(run, task, q) {
    setView("task");
    var r = runById(run);
    if (!r) { app.innerHTML = '<p class="error">No run ' + esc(run) + " in this site.</p>"; return; }
    var key = run + "/" + task;
    app.innerHTML = '<p class="muted">Loading items…</p>';
    loadIndex(run, task).then(function (ix) { renderTask(r, task, ix, q, key); }, function (e) {
      app.innerHTML = '<p class="error">' + esc(e.message) + "</p>";
    });
  }
  function renderTask(r, task, ix, q, key) {
    var rows = [];
    for (var i = 0; i < ix.rows.length; i++) if (matches(ix, ix.rows[i], i, q, key)) rows.push(i);
    var page = Math.max(0, Math.min(parseInt(q.page || "0", 10) || 0, Math.floor(Math.max(0, rows.length - 1) / PAGE)));
    var shown = rows.slice(page * PAGE, page * PAGE + PAGE);
    var counts = filterCounts(ix);
    var active = q.f ? q.f.split(",") : [];
    var lb = state.site.leaderboard.filter(function (x) { return x.run === r.slug && x.task === task; })[0];
    var lic = (state.site.tasks[task] || {}).licence || "licence not recorded";
    var html = '<section class="page task-page"><div class="crumbs"><a href="#/">Leaderboard</a> › ' + esc(r.model) + " › <b>" + esc(task) + "</b></div>";
    html += '<h1>' + esc(task) + ' <span class="sub">' + esc(r.model) + "</span></h1>";
    html += '<p class="lede">' + (lb ? "Score <b>" + num(lb.score) + "</b>" + (lb.ci_low != null ? " (" + num(lb.ci_low) + "–" + num(lb.ci_high) + ")" : "") + " · " : "") +
      int(ix.n) + " records · run " + esc(r.run_id) + (ix.cutoff ? " · cutoff " + esc(ix.cutoff) : "") +
      (r.rescore ? ' · <a href="' + hashFor(["rescore", r.slug], {}) + '">rescore changes</a>' : "") +
      '</p><p class="licence">Dataset licence: ' + esc(lic) + "</p>";
    if (ix.prompt_problem) html += '<p class="note">Prompts are not shown: ' + esc(ix.prompt_problem) + "</p>";
    html += '<div class="filters" id="filters">';
    FILTERS.forEach(function (f) {
      if (!counts[f[0]] && active.indexOf(f[0]) < 0) return;
      html += '<button type="button" class="chip' + (active.indexOf(f[0]) >= 0 ? " on" : "") + '" data-flag="' + f[0] + '">' + esc(f[1]) + ' <span class="count">' + int(counts[f[0]]) + "</span></button>";
    });
    ix.facets.forEach(function (f, j) {
      var opts = f.values.slice().sort().map(function (v) { return '<option value="' + esc(v) + '"' + (q["facet" + j] === v ? " selected" : "") + ">" + esc(v || "(none)") + "</option>"; }).join("");
      html += '<label class="facet">' + esc(f.name) + ' <select data-facet="' + j + '"><option value="">all</option>' + opts + "</select></label>";
    });
    html += '<input type="search" id="search" placeholder="Search id, question, answer…" value="' + esc(q.q || "") + '">';
    html += '<label class="deep"><input type="checkbox" id="deep"' + (q.deep ? " checked" : "") + "> in prompts &amp; completions</label>";
    html += '<span class="status" id="status">' + int(rows.length) + " of " + int(ix.n) + " shown</span></div>";
    html += '<div class="split"><div class="list"><table class="items" id="items" tabindex="0"><thead><tr><th class="num">#</th><th>Item</th><th>Verdict</th><th>Answer / gold</th><th>Question</th></tr></thead><tbody>';
    shown.forEach(function (i) {
      var row = ix.rows[i];
      var flags = [];
      if (row[3] & FLAGS.truncated) flags.push('<span class="flag">trunc.</span>');
      if (row[3] & FLAGS.censored) flags.push('<span class="flag">censored</span>');
      if (row[3] & FLAGS.post_cutoff) flags.push('<span class="flag post">post-cutoff</span>');
      if (row[3] & FLAGS.disagree) flags.push('<span class="flag">disagree</span>');
      if (row[3] & FLAGS.judged) flags.push('<span class="flag">judged</span>');
      html += '<tr data-i="' + i + '"' + (String(i) === q.item ? ' class="open"' : "") + '><td class="num muted">' + (i + 1) + '</td><td class="id">' + esc(row[0]) + (row[1] ? ' <span class="muted">#' + row[1] + "</span>" : "") +
        '<div class="facets">' + esc(facetLabel(ix, row)) + "</div></td><td>" + verdictPill(row[2]) + flags.join("") + '</td><td class="ans"><code>' + esc(row[7] || "–") + '</code> <span class="muted">/</span> <code class="gold">' + esc(row[8]) + '</code></td><td class="snip"><div class="clamp tex">' + esc(row[6]) + "</div></td></tr>";
    });
    if (!shown.length) html += '<tr><td colspan="5" class="muted empty">No item matches.</td></tr>';
    html += "</tbody></table>" + pager(rows.length, page) + '<p class="keys muted">Keys: <kbd>j</kbd>/<kbd>k</kbd> or <kbd>↓</kbd>/<kbd>↑</kbd> move · <kbd>Enter</kbd> opens · <kbd>n</kbd>/<kbd>p</kbd> page · <kbd>/</kbd> search · <kbd>m</kbd> math</p></div>';
    html += '<div class="detail" id="detail">' + (q.item == null ? '<p class="muted placeholder">Select an item (click, or <kbd>j</kbd>/<kbd>k</kbd> and <kbd>Enter</kbd>) to see its prompt, completion and grading.</p>' : '<p class="muted">Loading item…</p>') + "</div></div></section>";
    app.innerHTML = html;
    renderMath(document.getElementById("items"));
    bindTask(r, task, ix, q, rows, shown, page, key);
    if (q.item != null) {
      var it = parseInt(q.item, 10);
      loadItem(r.slug, task, it).then(function (item) {
        document.getElementById("detail").innerHTML = itemHtml(ix, item, ix.rows[it]);
        renderMath(document.getElementById("detail"));
        ready();
      });
    } else {
      ready();
    }
  }
  function pager(n, page) {
    var pages = Math.ceil(n / PAGE);
    if (pages <= 1) return "";
    return '<div class="pager"><button type="button" data-page="' + (page - 1) + '"' + (page <= 0 ? " disabled" : "") + '>‹ Prev</button> <span>page ' + (page + 1) + " of " + pages + '</span> <button type="button" data-page="' + (page + 1) + '"' + (page >= pages - 1 ? " disabled" : "") + ">Next ›</button></div>";
  }
  function go(run, task, q, changes) {
    var nq = {};
    Object.keys(q).forEach(function (k) { nq[k] = q[k]; });
    Object.keys(changes).forEach(function (k) { nq[k] = changes[k]; });
    location.hash = hashFor(["task", run, task], nq);
  }
  function bindTask(r, task, ix, q, rows, shown, page, key) {
    var chips = app.querySelectorAll(".chip");
    for (var c = 0; c < chips.length; c++) {
      chips[c].addEventListener("click", function (ev) {
        var flag = ev.currentTarget.getAttribute("data-flag");
        var f = q.f ? q.f.split(",") : [];
        var at = f.indexOf(flag);
        if (at >= 0) f.splice(at, 1); else f.push(flag);
        go(r.slug, task, q, { f: f.join(","), page: "", item: "" });
      });
    }
    var sels = app.querySelectorAll("select[data-facet]");
    for (var s = 0; s < sels.length; s++) {
      sels[s].addEventListener("change", function (ev) {
        var ch = { page: "", item: "" };
        ch["facet" + ev.currentTarget.getAttribute("data-facet")] = ev.currentTarget.value;
        go(r.slug, task, q, ch);
      });
    }
    var search = document.getElementById("search"), timer = null;
    search.addEventListener("input", function () {
      clearTimeout(timer);
      timer = setTimeout(function () { go(r.slug, task, q, { q: search.value, page: "", item: "" }); }, 250);
    });
    if (q.q != null && document.activeElement !== search && state.refocusSearch) {
      search.focus(); search.setSelectionRange(search.value.length, search.value.length);
    }
    search.addEventListener("focus", function () { state.refocusSearch = true; });
    search.addEventListener("blur", function () { state.refocusSearch = false; });
    document.getElementById("deep").addEventListener("change", function (ev) {
      if (ev.currentTarget.checked) {
        loadFulltext(r.slug, task, ix, key).then(function () { go(r.slug, task, q, { deep: "1", page: "" }); });
      } else {
        go(r.slug, task, q, { deep: "" });
      }
    });
    if (q.deep && !state.fulltext[key]) {
      loadFulltext(r.slug, task, ix, key).then(function () { route(); });
    }
    var trs = app.querySelectorAll("#items tbody tr[data-i]");
    for (var t = 0; t < trs.length; t++) {
      trs[t].addEventListener("click", function (ev) {
        go(r.slug, task, q, { item: ev.currentTarget.getAttribute("data-i") });
      });
    }
    var pbs = app.querySelectorAll(".pager button");
    for (var b = 0; b < pbs.length; b++) {
      pbs[b].addEventListener("click", function (ev) { go(r.slug, task, q, { page: ev.currentTarget.getAttribute("data-page"), item: "" }); });
    }
    var open = q.item != null ? shown.indexOf(parseInt(q.item, 10)) : -1;
    state.cursor = open >= 0 ? open : Math.min(state.cursorKey === key + page ? state.cursor : 0, shown.length - 1);
    state.cursorKey = key + page;
    paintCursor();
    state.keys = function (ev) {
      if (ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT")) {
        if (ev.key === "Escape") ev.target.blur();
        return;
      }
      var k = ev.key;
      if (k === "j" || k === "ArrowDown") { state.cursor = Math.min(shown.length - 1, state.cursor + 1); paintCursor(); ev.preventDefault(); }
      else if (k === "k" || k === "ArrowUp") { state.cursor = Math.max(0, state.cursor - 1); paintCursor(); ev.preventDefault(); }
      else if (k === "Enter" && shown.length) { go(r.slug, task, q, { item: String(shown[state.cursor]) }); ev.preventDefault(); }
      else if (k === "n" && (page + 1) * PAGE < rows.length) go(r.slug, task, q, { page: String(page + 1), item: "" });
      else if (k === "p" && page > 0) go(r.slug, task, q, { page: String(page - 1), item: "" });
      else if (k === "/") { search.focus(); ev.preventDefault(); }
      else if (k === "Escape" && q.item != null) go(r.slug, task, q, { item: "" });
    };
  }
  function paintCursor() {
    var trs = app.querySelectorAll("#items tbody tr[data-i]");
    for (var i = 0; i < trs.length; i++) trs[i].classList.toggle("cursor", i === state.cursor);
    if (trs[state.cursor] && trs[state.cursor].scrollIntoView) trs[state.cursor].scrollIntoView({ block: "nearest" });
  }
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "m" && !(ev.target && (ev.target.tagName === "INPUT" || ev.target.tagName === "SELECT"))) {
      document.getElementById("math-toggle").click();
      return;
    }
    if (document.documentElement.getAttribute("data-view") === "task" && state.keys) state.keys(ev);
  });
  function loadFulltext(run, task, ix, key) {
    var nChunks = Math.ceil(ix.n / ix.chunk_size), done = 0, texts = new Array(ix.n);
    var status = document.getElementById("status");
    var seq = Promise.resolve();
    for (var n = 0; n < nChunks; n++) {
      (function (n) {
        seq = seq.then(function () {
          return loadChunk(run, task, n).then(function (items) {
            items.forEach(function (it, j) {
              var p = (it.prompt || []).map(function (m) { return m[2]; }).join(" ");
              texts[n * ix.chunk_size + j] = [it.question, p, it.completion, it.reasoning].join(" ").toLowerCase();
            });
            done++;
            if (status) status.textContent = "loading text " + done + " / " + nChunks;
          });
        });
      })(n);
    }
    return seq.then(function () { state.fulltext[key] = texts; });
  }

  // ---------------------------------------------------------------- one item
  function promptHtml(ix, item) {
    if (!item.prompt) {
      return '<p class="note">' + esc(item.prompt_note || "The prompt could not be rendered.") + " The item's question is shown above.</p>";
    }
    var parts = item.prompt.map(function (m) {
      var shared = m[1] >= 0 ? ix.prefixes[m[1]] : "";
      var head = m[0] === "prompt" ? "" : '<div class="role">' + esc(m[0]) + "</div>";
      var pre = shared ? '<details class="shared"><summary>shared prefix: ' + int(shared.length) + " characters, the same for every item" + (ix.facets.length ? " of this " + esc(ix.facets[0].name) : "") + "</summary>" + mathBlock(shared, "prompt-text") + "</details>" : "";
      return '<div class="msg">' + head + pre + mathBlock(m[2], "prompt-text") + "</div>";
    }).join("");
    var badge = item.prompt_verified === true ? '<span class="ok-badge" title="the request key computed from this text matches the stored record">matches the request key</span>' :
      item.prompt_verified === false ? '<span class="warn-badge">' + esc(item.prompt_note) + "</span>" : "";
    return badge + parts;
  }
  function scorersHtml(item) {
    var names = Object.keys(item.scores || {});
    if (names.length < 2) return "";
    return '<h3>Scorers</h3><table class="plain scorers"><thead><tr><th>Scorer</th><th>Answer</th><th>Method</th><th>Verdict</th><th>Reason</th><th>Version</th></tr></thead><tbody>' +
      names.map(function (n) {
        var s = item.scores[n];
        return "<tr><td>" + esc(n) + "</td><td><code>" + esc(s.answer == null ? "–" : s.answer) + "</code></td><td>" + esc(s.method) + " (" + esc(s.status) + ")</td><td>" + verdictPill(s.correct ? "right" : "wrong") + "</td><td>" + esc(s.reason) + '</td><td class="muted">' + esc(s.version || "") + "</td></tr>";
      }).join("") + "</tbody></table>";
  }
  function judgeHtml(item) {
    if (!item.judge) return "";
    var j = item.judge;
    var rows = Object.keys(j).map(function (k) {
      var v = j[k];
      return "<tr><th>" + esc(k) + "</th><td>" + (typeof v === "string" ? mathBlock(v, "inline") : "<code>" + esc(JSON.stringify(v)) + "</code>") + "</td></tr>";
    }).join("");
    return '<h3>Judge</h3><table class="plain kv">' + rows + "</table>";
  }
  function itemHtml(ix, item, row) {
    var main = (item.scores || {}).main || {};
    var facts = [
      ["Gold", "<code class=\"gold\">" + esc(item.gold) + "</code>"],
      ["Extracted", item.status === "error" ? "–" : "<code>" + esc(main.answer == null ? "(none)" : main.answer) + "</code> <span class=\"muted\">" + esc(main.method || "") + (main.status && main.status !== "ok" ? ", " + esc(main.status) : "") + "</span>"],
      ["Grader", esc(main.reason || "–")]
    ];
    if (main.points != null) facts.push(["Points", num(main.points, 1)]);
    facts.push(["Finish", esc(item.finish) + (item.max_tokens ? ' <span class="muted">of ' + int(item.max_tokens) + " tokens</span>" : "")]);
    var u = item.usage || {};
    facts.push(["Tokens", int(u.prompt) + " in · " + int(u.completion) + " out" + (u.reasoning ? " (" + int(u.reasoning) + " reasoning)" : "")]);
    if (item.censoring) facts.push(["Censoring", '<span class="pill c-' + esc(item.censoring) + '">' + esc(item.censoring) + "</span>"]);
    if (item.date) facts.push(["Date", esc(item.date) + (row[3] & FLAGS.post_cutoff ? ' <span class="flag post">after the cutoff ' + esc(ix.cutoff) + "</span>" : "")]);
    Object.keys(item.meta || {}).forEach(function (k) {
      var v = item.meta[k];
      if (typeof v === "string" && v.length > 80) return;
      facts.push([k, esc(typeof v === "string" ? v : JSON.stringify(v))]);
    });
    var html = '<div class="item-head"><h2>' + esc(item.id) + (item.repeat ? ' <span class="muted">repeat ' + item.repeat + "</span>" : "") + "</h2>" + verdictPill(row[2]) + "</div>";
    if (item.status === "error") html += '<p class="error">The request failed: ' + esc(item.error || "error") + " (errors are excluded from scores, never graded wrong).</p>";
    html += '<dl class="facts">' + facts.map(function (f) { return "<dt>" + esc(f[0]) + "</dt><dd>" + f[1] + "</dd>"; }).join("") + "</dl>";
    html += scorersHtml(item) + judgeHtml(item);
    html += "<h3>Question</h3>" + mathBlock(item.question || "", "question");
    if (item.choices) {
      html += '<ol class="choices" type="A">' + item.choices.map(function (c, k) {
        var letter = String.fromCharCode(65 + k);
        var cls = letter === item.gold ? "gold" : letter === main.answer ? "picked" : "";
        return '<li class="' + cls + '">' + mathBlock(c, "inline") + "</li>";
      }).join("") + "</ol>";
    }
    html += '<details class="prompt"><summary>Prompt as sent</summary>' + promptHtml(ix, item) + "</details>";
    if (item.reasoning) html += '<details class="reasoning"><summary>Reasoning (' + int(u.reasoning || item.reasoning.length) + (u.reasoning ? " tokens" : " characters") + ")</summary>" + mathBlock(item.reasoning, "completion") + "</details>";
    html += "<h3>Completion</h3>" + (item.completion ? mathBlock(item.completion, "completion") : '<p class="muted">(empty)</p>');
    return html;
  }

  // ---------------------------------------------------------------- run vs run
  function viewCompare(q) {
    setView("compare");
    var s = state.site, runs = s.runs;
    var pairs = s.comparisons;
    var a = q.a || (pairs[0] && pairs[0].a) || (runs[0] && runs[0].slug);
    var b = q.b || (pairs[0] && pairs[0].b) || (runs[1] && runs[1].slug);
    var ra = runById(a), rb = runById(b);
    var shared = ra && rb ? ra.tasks.filter(function (t) { return rb.tasks.indexOf(t) >= 0; }) : [];
    var task = q.task && shared.indexOf(q.task) >= 0 ? q.task : shared[0];
    function sel(name, cur) {
      return '<select data-sel="' + name + '">' + runs.map(function (r) { return '<option value="' + esc(r.slug) + '"' + (r.slug === cur ? " selected" : "") + ">" + esc(r.model + " · " + r.run_id) + "</option>"; }).join("") + "</select>";
    }
    var html = '<section class="page"><h1>Run vs run</h1><p class="lede">Two runs on the same items, the items where they differ first (the paired comparison\'s discordant pairs).</p>';
    html += '<div class="filters">A ' + sel("a", a) + " B " + sel("b", b) + (shared.length ? ' Task <select data-sel="task">' + shared.map(function (t) { return "<option" + (t === task ? " selected" : "") + ">" + esc(t) + "</option>"; }).join("") + "</select>" : "") + "</div>";
    var rescored = runs.filter(function (r) { return r.rescore; });
    if (rescored.length) {
      html += '<p class="muted">Rescored runs: ' + rescored.map(function (r) { return '<a href="' + hashFor(["rescore", r.slug], {}) + '">' + esc(r.model + " · " + r.run_id) + "</a>"; }).join(", ") + "</p>";
    }
    if (runs.length < 2) { app.innerHTML = html + '<p class="muted">Give two or more run folders to compare them.</p></section>'; bindCompare(q); ready(); return; }
    if (!task) { app.innerHTML = html + '<p class="muted">These two runs share no task.</p></section>'; bindCompare(q); ready(); return; }
    app.innerHTML = html + '<div id="cmp"><p class="muted">Loading…</p></div></section>';
    bindCompare(q);
    Promise.all([loadIndex(a, task), loadIndex(b, task)]).then(function (ixs) {
      renderCompare(ra, rb, task, ixs[0], ixs[1], q);
    });
  }
  function bindCompare(q) {
    var sels = app.querySelectorAll("select[data-sel]");
    for (var i = 0; i < sels.length; i++) {
      sels[i].addEventListener("change", function (ev) {
        var nq = { a: q.a, b: q.b, task: q.task };
        var cur = app.querySelectorAll("select[data-sel]");
        for (var j = 0; j < cur.length; j++) nq[cur[j].getAttribute("data-sel")] = cur[j].value;
        nq[ev.currentTarget.getAttribute("data-sel")] = ev.currentTarget.value;
        location.hash = hashFor(["compare"], nq);
      });
    }
  }
  function renderCompare(ra, rb, task, ia, ib, q) {
    var byKey = {};
    ib.rows.forEach(function (row, i) { byKey[row[0] + "#" + row[1]] = i; });
    var pairs = [];
    ia.rows.forEach(function (row, i) {
      var j = byKey[row[0] + "#" + row[1]];
      if (j == null) return;
      var x = row[2] === "right", y = ib.rows[j][2] === "right";
      var order = x !== y ? (x ? 0 : 1) : (x ? 3 : 2);
      if (row[2] === "error" || ib.rows[j][2] === "error") order = 4;
      pairs.push([order, i, j]);
    });
    pairs.sort(function (p, r) { return p[0] - r[0] || p[1] - r[1]; });
    var comp = state.site.comparisons.filter(function (c) { return c.task === task && ((c.a === ra.slug && c.b === rb.slug) || (c.a === rb.slug && c.b === ra.slug)); })[0];
    var flip = comp && comp.a !== ra.slug ? -1 : 1;
    var nA = pairs.filter(function (p) { return p[0] === 0; }).length, nB = pairs.filter(function (p) { return p[0] === 1; }).length;
    var html = '<div class="stats"><div><span class="k">shared items</span><span class="v">' + int(pairs.length) + "</span></div>";
    html += '<div><span class="k">only A right</span><span class="v">' + int(nA) + '</span></div><div><span class="k">only B right</span><span class="v">' + int(nB) + "</span></div>";
    if (comp) {
      var d = comp.diff * 100 * flip, lo = (flip > 0 ? comp.ci_low : -comp.ci_high) * 100, hi = (flip > 0 ? comp.ci_high : -comp.ci_low) * 100;
      html += '<div><span class="k">A − B</span><span class="v">' + (d > 0 ? "+" : "") + num(d) + '</span><span class="ci">' + num(lo) + " to " + num(hi) + '</span></div><div><span class="k">p (' + esc(comp.test) + ')</span><span class="v">' + num(comp.p_value, 4) + "</span></div>";
    }
    html += "</div>";
    var labels = ["only A right", "only B right", "both wrong", "both right", "an error"];
    html += '<table class="items" id="pairs"><thead><tr><th>Item</th><th>Difference</th><th>A: ' + esc(ra.model) + "</th><th>B: " + esc(rb.model) + "</th><th>Gold</th><th>Question</th></tr></thead><tbody>";
    var limit = parseInt(q.limit || "300", 10);
    pairs.slice(0, limit).forEach(function (p) {
      var x = ia.rows[p[1]], y = ib.rows[p[2]];
      html += '<tr data-i="' + p[1] + '" data-j="' + p[2] + '"' + (q.item === String(p[1]) ? ' class="open"' : "") + '><td class="id">' + esc(x[0]) + (x[1] ? " #" + x[1] : "") + '</td><td class="muted">' + labels[p[0]] + "</td><td>" + verdictPill(x[2]) + " <code>" + esc(x[7] || "–") + "</code></td><td>" + verdictPill(y[2]) + " <code>" + esc(y[7] || "–") + '</code></td><td><code class="gold">' + esc(x[8]) + '</code></td><td class="snip"><div class="clamp">' + esc(x[6]) + "</div></td></tr>";
    });
    html += "</tbody></table>";
    if (pairs.length > limit) html += '<p class="muted">' + int(pairs.length - limit) + ' more (<a href="' + hashFor(["compare"], { a: ra.slug, b: rb.slug, task: task, limit: String(pairs.length) }) + '">show all</a>)</p>';
    html += '<div id="pair-detail"></div>';
    document.getElementById("cmp").innerHTML = html;
    var trs = document.querySelectorAll("#pairs tbody tr");
    for (var t = 0; t < trs.length; t++) {
      trs[t].addEventListener("click", function (ev) {
        var tr = ev.currentTarget;
        showPair(ra, rb, task, ia, ib, parseInt(tr.getAttribute("data-i"), 10), parseInt(tr.getAttribute("data-j"), 10));
      });
    }
    ready();
  }
  function showPair(ra, rb, task, ia, ib, i, j) {
    Promise.all([loadItem(ra.slug, task, i), loadItem(rb.slug, task, j)]).then(function (its) {
      var el = document.getElementById("pair-detail");
      el.innerHTML = '<h2>' + esc(its[0].id) + '</h2><div class="question-once">' + mathBlock(its[0].question || "", "question") + '</div><div class="side-by-side"><div><h3>A: ' + esc(ra.model) + "</h3>" + itemHtml(ia, its[0], ia.rows[i]) + "</div><div><h3>B: " + esc(rb.model) + "</h3>" + itemHtml(ib, its[1], ib.rows[j]) + "</div></div>";
      renderMath(el);
      el.scrollIntoView({ block: "start" });
    });
  }

  // ---------------------------------------------------------------- rescore diff
  function viewRescore(run, q) {
    setView("rescore");
    var r = runById(run);
    app.innerHTML = '<p class="muted">Loading…</p>';
    loadScript("data/" + run + "/rescore.js").then(function () {
      var d = state.rescores[run];
      var html = '<section class="page"><div class="crumbs"><a href="#/">Leaderboard</a> › ' + esc(r.model) + " › rescore</div><h1>Rescore changes <span class=\"sub\">" + esc(r.run_id) + "</span></h1>";
      html += '<p class="lede">Grades kept in <code>' + esc(d.backup) + "</code> (before the last rescore) against the current <code>" + esc(d.records_file) + "</code>: " + int(d.changes.length) + " of " + int(d.n_compared) + " records changed.</p>";
      if (d.backups.length > 1) html += '<p class="muted">Earlier backups: ' + d.backups.slice(0, -1).map(esc).join(", ") + "</p>";
      var gained = d.changes.filter(function (c) { return c.new && c.new.correct && !(c.old && c.old.correct); }).length;
      var lost = d.changes.filter(function (c) { return c.old && c.old.correct && !(c.new && c.new.correct); }).length;
      html += '<div class="stats"><div><span class="k">now right</span><span class="v plus">' + (gained ? "+" : "") + int(gained) + '</span></div><div><span class="k">now wrong</span><span class="v minus">' + (lost ? "−" : "") + int(lost) + '</span></div><div><span class="k">answer changed only</span><span class="v">' + int(d.changes.length - gained - lost) + "</span></div></div>";
      html += '<table class="items diff" id="rescore"><thead><tr><th>Task</th><th>Item</th><th>Before</th><th>After</th><th>Grader reason</th></tr></thead><tbody>';
      d.changes.forEach(function (c) {
        function side(g) {
          if (!g) return '<span class="muted">(absent)</span>';
          return verdictPill(g.status === "error" ? "error" : g.correct ? "right" : "wrong") + " <code>" + esc(g.answer == null ? "–" : g.answer) + '</code> <span class="muted">' + esc(g.method || "") + "</span>";
        }
        html += '<tr data-task="' + esc(c.task) + '" data-id="' + esc(c.id) + '" data-repeat="' + c.repeat + '"><td>' + esc(c.task) + '</td><td class="id">' + esc(c.id) + (c.repeat ? " #" + c.repeat : "") + '</td><td class="old">' + side(c.old) + '</td><td class="new">' + side(c.new) + '</td><td><div class="old-reason">' + esc(c.old ? c.old.reason : "") + '</div><div class="new-reason">' + esc(c.new ? c.new.reason : "") + "</div></td></tr>";
      });
      app.innerHTML = html + "</tbody></table></section>";
      var trs = app.querySelectorAll("#rescore tbody tr");
      for (var t = 0; t < trs.length; t++) {
        trs[t].addEventListener("click", function (ev) {
          var tr = ev.currentTarget, tk = tr.getAttribute("data-task"), id = tr.getAttribute("data-id"), rep = parseInt(tr.getAttribute("data-repeat"), 10);
          loadIndex(run, tk).then(function (ix) {
            for (var i = 0; i < ix.rows.length; i++) if (ix.rows[i][0] === id && ix.rows[i][1] === rep) { location.hash = hashFor(["task", run, tk], { item: String(i) }); return; }
          });
        });
      }
      ready();
    }, function () { app.innerHTML = '<p class="muted">This run has no rescore backup.</p>'; ready(); });
  }
})();
