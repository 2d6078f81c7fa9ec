/* Command-center screen: Leaflet map of incidents from the OGC API plus the summary figures.
 * Query parameters: date=YYYY-MM-DD (the day shown as "today"), refresh=seconds (default 60).
 * Colours come from the summary's "styles" (analytics/screen.py: the catalogue's code colours
 * and analytics/palettes.py); the page has none of its own beyond its chrome (screen.css). */
(function () {
  "use strict";
  var params = new URLSearchParams(window.location.search);
  var refreshSeconds = Math.max(2, Number(params.get("refresh")) || 60);
  var day = params.get("date");
  var state = { refreshes: 0, styles: {}, incidents: 0, day: null };
  window.tianyaScreen = state;

  var map = L.map("map", { preferCanvas: true, zoomControl: true }).setView([18.33, 109.45], 11);
  state.map = map;
  L.tileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", {
    maxZoom: 19, attribution: "&copy; OpenStreetMap contributors"
  }).addTo(map);
  L.control.scale({ imperial: false }).addTo(map);
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

  // the legend from the summary's colours: the hot Gi* bins drawn, then overdue cases
  function drawLegend(st) {
    legendDiv.innerHTML = st.hot_bins.map(function (b) {
      return '<div><i style="background:' + esc(b.color) + '"></i>' + esc(b.label) + "</div>";
    }).join("") + '<div><i style="background:' + esc(st.overdue) +
      ';border-radius:50%"></i>超期 Overdue</div>';
  }

  function drawSummary(s) {
    state.day = s.day;
    state.palette = s.styles;
    state.styles = s.styles.category;
    drawLegend(s.styles);
    text("k-received", s.today.received);
    text("k-closed", s.today.closed);
    text("k-open", s.today.open);
    text("k-overdue", s.overdue);
    text("k-completion", pct(s.week.completion_rate));
    text("k-ontime", pct(s.week.on_time_rate));
    text("day", "日期 " + s.day);
    var cats = document.getElementById("categories");
    cats.innerHTML = s.today.by_category.map(function (c) {
      var color = (state.styles[c.category] || {}).color || s.styles.muted;
      return '<li><i style="background:' + esc(color) + '"></i>' + esc(c.label) +
        " " + c.cases + "</li>";
    }).join("");
    var list = document.getElementById("overdue");
    list.innerHTML = s.overdue_cases.map(function (c, i) {
      return '<li data-i="' + i + '">' + esc(c.category_label) + " · " + esc(c.community) +
        " · " + esc(c.department) + "<br><small>" + esc(c.case_no) + " 时限 " +
        esc(c.deadline) + " 超期 " + c.overdue_h + " h</small></li>";
    }).join("");
    Array.prototype.forEach.call(list.children, function (li) {
      li.onclick = function () {
        var c = s.overdue_cases[Number(li.dataset.i)];
        map.setView([c.lat, c.lon], 16);
      };
    });
    layers.overdue.clearLayers();
    s.overdue_cases.forEach(function (c) {
      L.circleMarker([c.lat, c.lon], { radius: 8, color: s.styles.overdue, weight: 3,
        fill: false })
        .bindPopup(esc(c.title) + "<br>" + esc(c.case_no) + "<br>超期 " + c.overdue_h + " h")
        .addTo(layers.overdue);
    });
    layers.hotspots.clearLayers();
    L.geoJSON(s.hotspots, {
      style: function (f) {
        return { color: f.properties.color, weight: 1, fillColor: f.properties.color,
          fillOpacity: 0.5 };
      },
      onEachFeature: function (f, l) {
        l.bindPopup("热点 Hot spot · " + f.properties.count + " 件 · z=" + f.properties.gi_z);
      }
    }).addTo(layers.hotspots);
  }

  function drawIncidents(fc) {
    layers.incidents.clearLayers();
    state.incidents = fc.features.length;
    fc.features.forEach(function (f) {
      if (!f.geometry) { return; }
      var p = f.properties;
      var st = state.styles[p.category] || {};
      var c = f.geometry.coordinates;
      // edged in the page's background (screen.css) so dense dots stay apart
      L.circleMarker([c[1], c[0]], { radius: 4, color: "#0b1a2e", weight: 1,
        fillColor: st.color || state.palette.incident, fillOpacity: 0.9 })
        .bindPopup(esc(p.title) + "<br>" + esc(st.label || p.category) + " · " + esc(p.case_no))
        .addTo(layers.incidents);
    });
  }

  function isoDay(d) { return d.toISOString().slice(0, 10); }

  function refresh() {
    var q = day ? "?date=" + encodeURIComponent(day) : "";
    return fetch("/screen/summary.json" + q).then(function (r) {
      if (!r.ok) { throw new Error("summary " + r.status); }
      return r.json();
    }).then(function (s) {
      drawSummary(s);
      // the last 7 Beijing days up to the end of the shown day, as UTC instants
      var end = new Date(s.day + "T00:00:00+08:00");
      end.setUTCDate(end.getUTCDate() + 1);
      var start = new Date(end.getTime() - 7 * 86400000);
      var url = "/collections/incidents/items?f=json&limit=5000&datetime=" +
        start.toISOString().replace(".000", "") + "/" + end.toISOString().replace(".000", "");
      return fetch(url).then(function (r) {
        if (!r.ok) { throw new Error("items " + r.status); }
        return r.json();
      }).then(drawIncidents);
    }).then(function () {
      state.refreshes += 1;
      var el = document.getElementById("updated");
      el.dataset.refreshes = String(state.refreshes);
      el.textContent = "更新 Updated " + new Date().toLocaleTimeString("zh-CN", { hour12: false });
    }).catch(function (err) {
      document.getElementById("updated").textContent = "更新失败 " + err.message;
      console.warn(err);
    });
  }

  function tick() {
    document.getElementById("clock").textContent = new Date().toLocaleString("zh-CN",
      { timeZone: "Asia/Shanghai", hour12: false });
  }
  tick();
  setInterval(tick, 1000);
  refresh();
  setInterval(refresh, refreshSeconds * 1000);
  state.isoDay = isoDay;
})();
