/* Command-center screen: Leaflet map of incidents from the OGC API plus the summary figures.
 * Query parameters: date=YYYY-MM-DD (a past day, labelled "历史回看"), refresh=seconds (default
 * 60), basemap=tianya (default: the server's own dark base map, /styles/basemap-dark drawn by
 * /assets/basemap.js, no other host) or osm (OpenStreetMap's tiles: needs internet).
 * Every time shown is in the summary's time zone (Beijing), whatever the browser's zone.
 * Colours come from the summary's "styles" (analytics/screen.py: the catalogue's code colours
 * and analytics/palettes.py); the page has none of its own beyond its chrome (screen.css). */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var refreshSeconds = Math.max(2, Number(params.get("refresh")) || 60);
  var day = params.get("date");
  var state = {
    refreshes: 0, styles: {}, incidents: 0, day: null, tz: null,  // tz: from the summary
    overdueMarkers: {}, fitted: false
  };
  window.tianyaScreen = state;

  var map = L.map("map", { preferCanvas: true, zoomControl: true });
  state.map = map;
  if (params.get("basemap") === "osm") {  // an online base map, chosen by the user
    state.basemap = L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
      maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"
    });
  } else {
    state.basemap = L.tianyaBasemap("/styles/basemap-dark");
  }
  state.basemap.addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
  // one pane (and canvas) a layer: hot cells under the incidents under the overdue cases
  function pane(name, z) {
    map.createPane(name).style.zIndex = String(z);
    return { pane: name, renderer: L.canvas({ pane: name }) };
  }
  var panes = {
    hotspots: pane("screen-hotspots", 405),
    incidents: pane("screen-incidents", 410),
    overdue: pane("screen-overdue", 415)
  };
  var layers = {
    incidents: L.layerGroup().addTo(map),
    hotspots: L.layerGroup().addTo(map),
    overdue: L.layerGroup().addTo(map)
  };
  state.layers = layers;
  L.control.layers(null, {
    "近7日事件 Incidents (7 days)": layers.incidents,
    "热点 Hot spots (Gi*)": layers.hotspots,
    "超期案件 Overdue cases": layers.overdue
  }, { collapsed: false }).addTo(map);
  var legend = L.control({ position: "bottomleft" });
  var legendDiv = null;
  legend.onAdd = function () {
    legendDiv = L.DomUtil.create("div", "screen-legend");
    return legendDiv;
  };
  legend.addTo(map);

  function esc(s) {
    return String(s == null ? "" : s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function pct(v) { return v == null ? "—" : (v * 100).toFixed(1) + "%"; }
  function text(id, v) { document.getElementById(id).textContent = v; }

  // an instant as "YYYY-MM-DD HH:mm:ss" (or its parts) in the screen's time zone
  function beijing(date, what) {
    var parts = {};
    new Intl.DateTimeFormat("en-GB", {
      timeZone: state.tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit"
    }).formatToParts(date).forEach(function (p) { parts[p.type] = p.value; });
    var d = parts.year + "-" + parts.month + "-" + parts.day;
    var t = parts.hour + ":" + parts.minute + ":" + parts.second;
    if (what === "time") { return t; }
    if (what === "short") { return parts.month + "-" + parts.day + " " + t.slice(0, 5); }
    return d + " " + t;
  }
  state.beijing = beijing;

  // the legend from the summary's colours: the hot Gi* bins drawn, then overdue cases
  function drawLegend(st) {
    legendDiv.innerHTML = st.hot_bins.map(function (b) {
      return '<div><i style="background:' + esc(b.color) + '"></i>' + esc(b.label) + "</div>";
    }).join("") + '<div><i style="background:' + esc(st.overdue) +
      ';border-radius:50%"></i>超期 Overdue</div>';
  }

  // the day the figures are for: today, the latest day with cases, or a day asked for
  function drawDay(s) {
    var box = document.getElementById("dayinfo");
    box.dataset.kind = s.day_kind;
    var label = { today: "今日 Today", latest: "数据日 Data day", requested: "历史回看 History" };
    var note = {
      today: "",
      latest: "今日暂无受理，显示最近有受理的一天 · no case yet today: the latest day with cases",
      requested: s.latest_day ? "最新数据 latest data " + s.latest_day : ""
    };
    text("day-label", label[s.day_kind] || label.latest);
    text("day-value", s.day);
    text("day-note", note[s.day_kind] || "");
    text("tz", s.tz);
  }

  // marker sizes by zoom: at the district's view (zoom 12 and less) the dots shrink so the
  // 500 m hot cells beneath them (a few pixels wide there) stay readable
  function sizes() {
    var low = map.getZoom() <= 12;
    return {
      incident: { radius: low ? 2.5 : 4, weight: low ? 0 : 1, fillOpacity: low ? 0.75 : 0.9 },
      overdue: { radius: low ? 5 : 8, weight: low ? 1.5 : 3, fillOpacity: low ? 0 : 0.25 },
      hot: { weight: low ? 4 : 1.5 }
    };
  }
  function restyle() {
    var z = sizes();
    layers.incidents.eachLayer(function (l) { l.setStyle(z.incident).setRadius(z.incident.radius); });
    layers.overdue.eachLayer(function (l) { l.setStyle(z.overdue).setRadius(z.overdue.radius); });
    layers.hotspots.eachLayer(function (g) {
      if (g.setStyle) { g.setStyle(z.hot); }
    });
  }
  map.on("zoomend", restyle);

  function focusCase(c, li) {
    var marker = state.overdueMarkers[c.case_no];
    if (!map.hasLayer(layers.overdue)) { map.addLayer(layers.overdue); }
    Array.prototype.forEach.call(document.querySelectorAll("#overdue li.active"), function (e) {
      e.classList.remove("active");
    });
    if (li) { li.classList.add("active"); }
    map.closePopup();
    map.once("moveend", function () { if (marker) { marker.openPopup(); } });
    map.flyTo([c.lat, c.lon], Math.max(map.getZoom(), 16), { duration: 1.0 });
  }
  state.focusCase = focusCase;

  function range(r) { return "[" + r.lo.toFixed(1) + "–" + r.hi.toFixed(1) + "]"; }

  // next week's expected cases by major class (80 % interval) and the communities that warn
  function drawOutlook(o, st) {
    var ul = document.getElementById("outlook"), ol = document.getElementById("warnings");
    if (!o || !o.total) {
      text("outlook-week", "");
      ul.innerHTML = '<li class="none">' + esc(o ? o.note : "—") + "</li>";
      ol.innerHTML = "";
      return;
    }
    text("outlook-week", o.week + " · " + o.first_day + "–" + o.last_day);
    ul.innerHTML = '<li class="total">合计 Total ' + o.total.expected.toFixed(1) + " <small>" +
      range(o.total) + " 平时 usual " + o.total.usual.toFixed(1) + "</small></li>" +
      o.categories.map(function (c) {
        var color = c.color || ((st.major_class || {})[c.major_class] || {}).color || st.muted;
        return '<li data-class="' + esc(c.major_class) + '"><i style="background:' +
          esc(color) + '"></i>' + esc(c.label) + " " + c.expected.toFixed(1) + " <small>" +
          range(c) + "</small></li>";
      }).join("");
    ol.innerHTML = o.warnings.length ? o.warnings.map(function (w) {
      return '<li data-community="' + esc(w.community_code) + '" title="' + esc(w.reason) +
        '">' + esc(w.community) + " " + w.expected.toFixed(1) + " <small>" + range(w) +
        " 平时 usual " + w.usual.toFixed(1) + "</small></li>";
    }).join("") : '<li class="none">无预警 · No warnings</li>';
  }

  // key tasks (重点工作督办): open, overdue, milestones on time, escalations; the ranking
  function drawKeyTasks(k) {
    var box = document.getElementById("key-tasks"), ol = document.getElementById("key-ranking");
    if (!k) { box.innerHTML = ""; ol.innerHTML = ""; return; }
    var esc3 = function (level) {
      return '<span data-level="' + esc(level) + '" style="color:' + esc(k.colors[level]) +
        '">' + esc(k.labels[level]) + " " + k.escalations[level] + "</span>";
    };
    box.innerHTML = '<span id="kt-open">在办 Open ' + k.all.open_tasks + "</span> · " +
      '<span id="kt-overdue">超期 Overdue ' + k.overdue_tasks + "</span> · " +
      '<span id="kt-ontime">节点按期 On time ' + pct(k.all.on_time_rate) + "</span><br>" +
      esc3("warning") + " · " + esc3("accountability") + "<br>" +
      '<span id="kt-entries">本周预警 Warnings this week ' + k.all.warning_entries +
      " · 问责 Accountability " + k.all.accountability_entries + "</span>";
    ol.innerHTML = k.ranking.map(function (r) {
      return '<li data-department="' + esc(r.department) + '">' + esc(r.label) + " " +
        pct(r.on_time_rate) + " <small>" + r.on_time + "/" + r.due + " · 超期 " +
        r.overdue_tasks + " · 问责 " + r.accountability + " · 本周记录 " +
        r.warning_entries + "/" + r.accountability_entries + "</small></li>";
    }).join("");
  }

  // today's hot topics (网络舆情): by posts today, then growth against the day before
  function drawOpinion(o) {
    var ol = document.getElementById("opinion-topics");
    if (!o) { text("opinion-count", ""); ol.innerHTML = ""; return; }
    text("opinion-count", "帖文 posts " + o.posts + " · 需处置 actionable " + o.actionable);
    ol.innerHTML = o.topics.length ? o.topics.map(function (t) {
      return '<li data-topic="' + esc(t.topic_id) + '"><i style="background:' + esc(t.color) +
        '"></i>' + esc(t.label) + " · " + esc(t.community) + ' <b class="n">' + t.posts_today +
        "</b> <small>前日 day before " + t.posts_before + " · 增长 growth ×" +
        t.growth.toFixed(1) + (t.case_id ? " · 已立案 case " + esc(t.case_id) : "") +
        "</small></li>";
    }).join("") : '<li class="none">今日无舆情话题 · No topic today</li>';
  }

  function drawSummary(s) {
    state.day = s.day;
    var first = !state.tz;
    state.tz = s.tz;
    if (first) { tick(); }
    state.summary = s;
    state.palette = s.styles;
    state.styles = s.styles.category;
    if (!state.fitted && s.bounds) {  // the first view: the whole district
      map.fitBounds([[s.bounds[1], s.bounds[0]], [s.bounds[3], s.bounds[2]]]);
      state.fitted = true;
    }
    drawDay(s);
    drawLegend(s.styles);
    var empty = s.today.received === 0;
    document.getElementById("empty-day").hidden = !empty;
    text("k-received", s.today.received);
    text("k-closed", s.today.closed);
    text("k-open", s.today.open);
    text("k-overdue", s.overdue);
    text("k-completion", pct(s.week.completion_rate));
    text("k-ontime", pct(s.week.on_time_rate));
    var cats = document.getElementById("categories");
    cats.innerHTML = empty ? '<li class="none">该日无受理 · No cases on this day</li>' :
      s.today.by_category.map(function (c) {
        var color = (state.styles[c.category] || {}).color || s.styles.muted;
        return '<li><i style="background:' + esc(color) + '"></i>' + esc(c.label) +
          " " + c.cases + "</li>";
      }).join("");
    drawOutlook(s.outlook, s.styles);
    drawKeyTasks(s.key_tasks);
    drawOpinion(s.opinion);
    var list = document.getElementById("overdue");
    list.innerHTML = s.overdue_cases.map(function (c, i) {
      return '<li data-i="' + i + '" data-case="' + esc(c.case_no) + '">' +
        esc(c.category_label) + " · " + esc(c.community) + " · " + esc(c.department) +
        "<br><small>" + esc(c.case_no) + " 时限 " + esc(c.deadline) + " 超期 " +
        c.overdue_h + " h</small></li>";
    }).join("");
    Array.prototype.forEach.call(list.children, function (li) {
      li.onclick = function () { focusCase(s.overdue_cases[Number(li.dataset.i)], li); };
    });
    layers.overdue.clearLayers();
    state.overdueMarkers = {};
    s.overdue_cases.forEach(function (c) {
      state.overdueMarkers[c.case_no] = L.circleMarker([c.lat, c.lon], L.extend({
        color: s.styles.overdue, fillColor: s.styles.overdue
      }, sizes().overdue, panes.overdue))
        .bindPopup("<b>" + esc(c.case_no) + "</b><br>" + esc(c.title) + "<br>" +
          esc(c.category_label) + " · " + esc(c.community) + "<br>时限 " + esc(c.deadline) +
          " · 超期 " + c.overdue_h + " h")
        .addTo(layers.overdue);
    });
    layers.hotspots.clearLayers();
    // 500 m cells are a few pixels wide at the district's view: drawn opaque, edged in their
    // own colour so each one shows
    L.geoJSON(s.hotspots, L.extend({
      style: function (f) {
        return L.extend({ color: f.properties.color, opacity: 1,
          fillColor: f.properties.color, fillOpacity: 0.85 }, sizes().hot);
      },
      onEachFeature: function (f, l) {
        l.bindPopup("热点 Hot spot · " + f.properties.count + " 件 · z=" + f.properties.gi_z);
      }
    }, panes.hotspots)).addTo(layers.hotspots);
  }

  function drawIncidents(fc) {
    layers.incidents.clearLayers();
    state.incidents = fc.features.length;
    fc.features.forEach(function (f) {
      if (!f.geometry) { return; }
      var p = f.properties;
      var st = state.styles[p.category] || {};
      var c = f.geometry.coordinates;
      var when = p.reported_at ? "<br>受理 " + beijing(new Date(p.reported_at), "short") : "";
      // edged in the page's background (screen.css) so dense dots stay apart
      L.circleMarker([c[1], c[0]], L.extend({ color: "#0b1a2e",
        fillColor: st.color || state.palette.incident }, sizes().incident, panes.incidents))
        .bindPopup(esc(p.title) + "<br>" + esc(st.label || p.category) + " · " +
          esc(p.case_no) + when)
        .addTo(layers.incidents);
    });
  }

  function utc(iso) { return new Date(iso).toISOString().replace(".000", ""); }

  function refresh() {
    var q = day ? "?date=" + encodeURIComponent(day) : "";
    return fetch("/screen/summary.json" + q).then(function (r) {
      if (!r.ok) { throw new Error("summary " + r.status); }
      return r.json();
    }).then(function (s) {
      drawSummary(s);
      // the last 7 Beijing days up to the end of the shown day (the summary's UTC bounds)
      var end = new Date(s.day_end);
      var start = new Date(end.getTime() - 7 * 86400000);
      var url = "/collections/incidents/items?f=json&limit=5000&datetime=" +
        utc(start) + "/" + utc(end);
      return fetch(url).then(function (r) {
        if (!r.ok) { throw new Error("items " + r.status); }
        return r.json();
      }).then(drawIncidents);
    }).then(function () {
      state.refreshes += 1;
      var el = document.getElementById("updated");
      el.dataset.refreshes = String(state.refreshes);
      el.textContent = "更新 Updated " + beijing(new Date(), "time");
    }).catch(function (err) {
      document.getElementById("updated").textContent = "更新失败 " + err.message;
      console.warn(err);
    });
  }

  function tick() {  // the district's time (its zone comes with the first summary)
    if (state.tz) { text("clock", beijing(new Date()) + " 北京时间"); }
  }
  tick();
  setInterval(tick, 1000);
  refresh();
  setInterval(refresh, refreshSeconds * 1000);
})();
