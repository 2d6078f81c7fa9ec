/* Tianya base map: a Mapbox GL / MapLibre style's vector tiles drawn on Leaflet canvas tiles.
 *
 *   L.tianyaBasemap("/styles/basemap").addTo(map);
 *   L.tianyaBasemap("/styles/basemap-dark", { attribution: "…" }).addTo(map);
 *
 * Needs Leaflet (1.9). The MVT decoder, vendor/vector-tile/vector-tile.js beside this file (the
 * `vectorTile` global: pbf + @mapbox/vector-tile, see its README.md), is loaded on first use if
 * the page has not loaded it. No WebGL, no glyph server, no other host: the style and its tiles
 * come from the server named in the style, labels use the browser's fonts.
 *
 * What it draws, per canvas tile, in the style's layer order:
 *   background  background-color, background-opacity
 *   fill        fill-color, fill-opacity, fill-outline-color (1 px)
 *   line        line-color, line-width, line-opacity, line-dasharray (in line widths),
 *               layout line-cap / line-join; on line and polygon features (polygons: their rings)
 *   symbol      text of point features: text-field (["get", "name"], "{name}" or a literal),
 *               text-size, text-color, text-opacity, text-halo-color, text-halo-width,
 *               text-anchor, text-offset (ems), text-transform, text-allow-overlap, text-padding
 * with minzoom / maxzoom, source-layer, layout visibility and filters (the legacy form and
 * expressions: == != < <= > >= in !in has !has all any none !). Paint values may be literals,
 * legacy {stops} functions or ["interpolate"/"step", …, ["zoom"], …] / ["get", …] expressions.
 *
 * Zoom: as MapLibre does, a style zoom z is drawn with 512-pixel tiles of zoom z, i.e. at Leaflet
 * zoom z + 1 (so widths, sizes and zoom ranges look as in MapLibre). Past the source's maxzoom the
 * deepest tile is cut and enlarged (over-zoom); below its minzoom only the background is drawn.
 * A tile answered 204 (empty) or failing draws the background without raising anything.
 *
 * Labels: each tile draws every label point its tiles carry, also those in the buffer around the
 * tile, so a label crossing a tile edge is drawn whole by the tiles on both sides (the base map's
 * tiles carry label points with a wide buffer: layers/basemap.py). Collisions are decided per
 * label from the labels that overlap it only (a label gives way to any overlapping label of
 * higher priority: later symbol layer, then lower symbol-sort-key or `rank`), so the tiles on both
 * sides of an edge take the same decision.
 *
 * For tests and tools: layer.stats counts tiles, features and labels drawn; each canvas carries
 * data-tile ("z/x/y" of the style zoom) and data-status ("drawn", "empty", "failed" or "blank").
 */
(function () {
  "use strict";
  if (typeof L === "undefined") { return; }

  var FONT = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", "Microsoft YaHei", ' +
    '"PingFang SC", "WenQuanYi Micro Hei", sans-serif';
  var TYPES = { 1: "Point", 2: "LineString", 3: "Polygon" };
  var SCRIPT = document.currentScript && document.currentScript.src;
  var decoder = null;

  // the vectorTile global: the page's, or loaded once from beside this script
  function loadDecoder() {
    if (typeof vectorTile !== "undefined") { return Promise.resolve(); }
    if (!decoder) {
      decoder = new Promise(function (resolve, reject) {
        var el = document.createElement("script");
        el.src = new URL("vendor/vector-tile/vector-tile.js", SCRIPT || document.baseURI).href;
        el.onload = function () { resolve(); };
        el.onerror = function () { reject(new Error("cannot load " + el.src)); };
        document.head.appendChild(el);
      });
    }
    return decoder;
  }

  // --- expressions and filters (the subset a hand-written style uses) -------------------------

  function interpolate(stops, z, base) {
    if (z <= stops[0][0]) { return stops[0][1]; }
    for (var i = 1; i < stops.length; i++) {
      if (z <= stops[i][0]) {
        var z0 = stops[i - 1][0], z1 = stops[i][0], v0 = stops[i - 1][1], v1 = stops[i][1];
        if (typeof v0 !== "number" || typeof v1 !== "number") { return z < z1 ? v0 : v1; }
        var t = base && base !== 1 ? (Math.pow(base, z - z0) - 1) / (Math.pow(base, z1 - z0) - 1)
          : (z - z0) / (z1 - z0);
        return v0 + (v1 - v0) * t;
      }
    }
    return stops[stops.length - 1][1];
  }

  function evaluate(v, zoom, f) {
    if (v === null || v === undefined) { return v; }
    if (Array.isArray(v)) {
      var op = v[0], props = f ? f.properties : {};
      switch (op) {
        case "get": return props[v[1]];
        case "has": return v[1] in props;
        case "literal": return v[1];
        case "zoom": return zoom;
        case "geometry-type": return f ? TYPES[f.type] : null;
        case "to-string": var s = evaluate(v[1], zoom, f); return s == null ? "" : String(s);
        case "to-number": return Number(evaluate(v[1], zoom, f));
        case "concat":
          return v.slice(1).map(function (a) {
            var x = evaluate(a, zoom, f); return x == null ? "" : String(x);
          }).join("");
        case "coalesce":
          for (var i = 1; i < v.length; i++) {
            var c = evaluate(v[i], zoom, f);
            if (c !== null && c !== undefined) { return c; }
          }
          return null;
        case "interpolate":
          var base = v[1][0] === "exponential" ? v[1][1] : 1, input = evaluate(v[2], zoom, f);
          var st = [];
          for (var j = 3; j + 1 < v.length; j += 2) { st.push([v[j], evaluate(v[j + 1], zoom, f)]); }
          return interpolate(st, input, base);
        case "step":
          var x = evaluate(v[1], zoom, f), out = evaluate(v[2], zoom, f);
          for (var k = 3; k + 1 < v.length; k += 2) {
            if (x >= v[k]) { out = evaluate(v[k + 1], zoom, f); }
          }
          return out;
        case "match":
          var m = evaluate(v[1], zoom, f);
          for (var n = 2; n + 1 < v.length; n += 2) {
            var labels = Array.isArray(v[n]) ? v[n] : [v[n]];
            if (labels.indexOf(m) >= 0) { return evaluate(v[n + 1], zoom, f); }
          }
          return evaluate(v[v.length - 1], zoom, f);
        case "case":
          for (var q = 1; q + 1 < v.length; q += 2) {
            if (test(v[q], zoom, f)) { return evaluate(v[q + 1], zoom, f); }
          }
          return evaluate(v[v.length - 1], zoom, f);
        default:
          if (isFilterOp(op)) { return test(v, zoom, f); }
          return v;  // a literal array (text-offset, line-dasharray)
      }
    }
    if (typeof v === "object" && v.stops) {  // legacy function
      var input2 = v.property ? (f ? f.properties[v.property] : undefined) : zoom;
      if (v.type === "categorical" || (v.property && typeof v.stops[0][0] !== "number")) {
        for (var p = 0; p < v.stops.length; p++) {
          if (v.stops[p][0] === input2) { return v.stops[p][1]; }
        }
        return v["default"];
      }
      return interpolate(v.stops, input2, v.base || 1);
    }
    return v;
  }

  var FILTER_OPS = ["==", "!=", "<", "<=", ">", ">=", "in", "!in", "has", "!has", "all", "any",
    "none", "!"];
  function isFilterOp(op) { return FILTER_OPS.indexOf(op) >= 0; }

  // a filter's operand: in the legacy form a bare string names a property ($type: the geometry)
  function operand(a, legacy, zoom, f) {
    if (legacy && typeof a === "string") {
      return a === "$type" ? TYPES[f.type] : a === "$id" ? f.id : f.properties[a];
    }
    return evaluate(a, zoom, f);
  }

  function test(filter, zoom, f) {
    if (filter === undefined || filter === null || filter === true) { return true; }
    if (filter === false || !Array.isArray(filter)) { return Boolean(filter); }
    var op = filter[0], legacy = typeof filter[1] === "string";
    switch (op) {
      case "all": return filter.slice(1).every(function (x) { return test(x, zoom, f); });
      case "any": return filter.slice(1).some(function (x) { return test(x, zoom, f); });
      case "none": return !filter.slice(1).some(function (x) { return test(x, zoom, f); });
      case "!": return !test(filter[1], zoom, f);
      case "has": return legacy ? filter[1] in f.properties : Boolean(evaluate(filter, zoom, f));
      case "!has": return !(filter[1] in f.properties);
      case "in":
      case "!in":
        var found;
        if (legacy) {
          found = filter.slice(2).indexOf(operand(filter[1], true, zoom, f)) >= 0;
        } else {
          var hay = evaluate(filter[2], zoom, f);
          found = hay != null && hay.indexOf(evaluate(filter[1], zoom, f)) >= 0;
        }
        return op === "in" ? found : !found;
      default:
        var a = operand(filter[1], legacy, zoom, f), b = evaluate(filter[2], zoom, f);
        switch (op) {
          case "==": return a === b;
          case "!=": return a !== b;
          case "<": return a < b;
          case "<=": return a <= b;
          case ">": return a > b;
          case ">=": return a >= b;
        }
        return evaluate(filter, zoom, f) !== false;
    }
  }

  function textOf(field, zoom, f, transform) {
    var t = typeof field === "string"
      ? field.replace(/\{([^}]+)\}/g, function (_, k) {
        var v = f.properties[k]; return v == null ? "" : String(v);
      })
      : evaluate(field, zoom, f);
    t = t == null ? "" : String(t).trim();
    if (transform === "uppercase") { t = t.toUpperCase(); }
    if (transform === "lowercase") { t = t.toLowerCase(); }
    return t;
  }

  function inZoom(layer, z) {
    return (layer.minzoom === undefined || z >= layer.minzoom) &&
      (layer.maxzoom === undefined || z < layer.maxzoom) &&
      (!layer.layout || layer.layout.visibility !== "none");
  }

  // --- drawing -----------------------------------------------------------------------------------

  // the tile's features of one style layer, with their transform (tile units → canvas pixels)
  function featuresOf(layer, sourceTiles, z) {
    var src = sourceTiles[layer.source];
    if (!src || !src.tile) { return []; }
    var vl = src.tile.layers[layer["source-layer"]];
    if (!vl) { return []; }
    var out = [];
    for (var i = 0; i < vl.length; i++) {
      var f = vl.feature(i);
      if (test(layer.filter, z, f)) { out.push(f); }
    }
    return out.map(function (f) { return { f: f, t: src.transform(f.extent) }; });
  }

  function tracePath(ctx, rings, t, close) {
    for (var r = 0; r < rings.length; r++) {
      var ring = rings[r];
      for (var i = 0; i < ring.length; i++) {
        var x = ring[i].x * t.k - t.dx, y = ring[i].y * t.k - t.dy;
        if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
      }
      if (close) { ctx.closePath(); }
    }
  }

  function paintOf(layer, name, z, f, dflt) {
    var v = layer.paint && layer.paint[name];
    v = evaluate(v, z, f);
    return v === undefined || v === null ? dflt : v;
  }

  function layoutOf(layer, name, z, f, dflt) {
    var v = layer.layout && layer.layout[name];
    v = evaluate(v, z, f);
    return v === undefined || v === null ? dflt : v;
  }

  function drawFill(ctx, layer, items, z, stats) {
    items.forEach(function (it) {
      if (it.f.type !== 3) { return; }
      var rings = it.f.loadGeometry();
      ctx.beginPath();
      tracePath(ctx, rings, it.t, true);
      ctx.globalAlpha = paintOf(layer, "fill-opacity", z, it.f, 1);
      ctx.fillStyle = paintOf(layer, "fill-color", z, it.f, "#000");
      ctx.fill("evenodd");
      var outline = paintOf(layer, "fill-outline-color", z, it.f, null);
      if (outline) {
        ctx.lineWidth = 1;
        ctx.setLineDash([]);
        ctx.strokeStyle = outline;
        ctx.stroke();
      }
      stats.features += 1;
    });
    ctx.globalAlpha = 1;
  }

  function drawLine(ctx, layer, items, z, stats) {
    items.forEach(function (it) {
      if (it.f.type !== 2 && it.f.type !== 3) { return; }
      var width = paintOf(layer, "line-width", z, it.f, 1);
      if (!(width > 0)) { return; }
      ctx.beginPath();
      tracePath(ctx, it.f.loadGeometry(), it.t, it.f.type === 3);
      ctx.globalAlpha = paintOf(layer, "line-opacity", z, it.f, 1);
      ctx.strokeStyle = paintOf(layer, "line-color", z, it.f, "#000");
      ctx.lineWidth = width;
      ctx.lineCap = layoutOf(layer, "line-cap", z, it.f, "butt");
      ctx.lineJoin = layoutOf(layer, "line-join", z, it.f, "miter");
      var dash = paintOf(layer, "line-dasharray", z, it.f, null);
      ctx.setLineDash(Array.isArray(dash) ? dash.map(function (d) {
        return d * Math.max(width, 1);
      }) : []);
      ctx.stroke();
      stats.features += 1;
    });
    ctx.setLineDash([]);
    ctx.globalAlpha = 1;
  }

  var ANCHORS = {  // text-anchor → [textAlign, box x from the anchor (in widths), y (in heights)]
    center: ["center", -0.5, -0.5], left: ["left", 0, -0.5], right: ["right", -1, -0.5],
    top: ["center", -0.5, 0], bottom: ["center", -0.5, -1], "top-left": ["left", 0, 0],
    "top-right": ["right", -1, 0], "bottom-left": ["left", 0, -1], "bottom-right": ["right", -1, -1]
  };

  // the labels of one symbol layer: text, style and box in world pixels (for collisions)
  function labelsOf(ctx, layer, items, z, order, origin, fontFamily) {
    var out = [];
    items.forEach(function (it) {
      if (it.f.type !== 1) { return; }
      var f = it.f;
      var text = textOf(layoutOf(layer, "text-field", z, f, ""), z, f,
        layoutOf(layer, "text-transform", z, f, "none"));
      if (!text) { return; }
      var size = layoutOf(layer, "text-size", z, f, 16);
      var fonts = layoutOf(layer, "text-font", z, f, []);
      var bold = Array.isArray(fonts) && fonts.join(" ").match(/Bold|Heavy|Black|Medium/i);
      var font = (bold ? "bold " : "") + size + "px " + fontFamily;
      ctx.font = font;
      var lines = text.split("\n");
      var w = Math.max.apply(null, lines.map(function (s) { return ctx.measureText(s).width; }));
      var lh = size * 1.2, h = lh * lines.length;
      var anchor = ANCHORS[layoutOf(layer, "text-anchor", z, f, "center")] || ANCHORS.center;
      var offset = layoutOf(layer, "text-offset", z, f, [0, 0]);
      var halo = paintOf(layer, "text-halo-width", z, f, 0);
      var pad = layoutOf(layer, "text-padding", z, f, 2) + halo;
      var pts = f.loadGeometry();
      pts.forEach(function (ring) {
        ring.forEach(function (pt) {
          var x = pt.x * it.t.k - it.t.dx + offset[0] * size;
          var y = pt.y * it.t.k - it.t.dy + offset[1] * size;
          var left = x + anchor[1] * w, top = y + anchor[2] * h;
          var key = layoutOf(layer, "symbol-sort-key", z, f, null);
          if (key === null && typeof f.properties.rank === "number") { key = f.properties.rank; }
          out.push({
            layer: layer, f: f, text: text, lines: lines, font: font, size: size, lh: lh,
            x: x, y: y, left: left, top: top, w: w, h: h, align: anchor[0],
            order: order, key: key === null ? 0 : key,
            allow: layoutOf(layer, "text-allow-overlap", z, f, false),
            // world pixels: the same on every tile that draws this label
            box: [origin.x + left - pad, origin.y + top - pad, origin.x + left + w + pad,
              origin.y + top + h + pad]
          });
        });
      });
    });
    return out;
  }

  function before(a, b) {  // whether label a has priority over label b
    if (a.order !== b.order) { return a.order > b.order; }  // later layer first, as MapLibre
    if (a.key !== b.key) { return a.key < b.key; }
    if (a.box[1] !== b.box[1]) { return a.box[1] < b.box[1]; }
    if (a.box[0] !== b.box[0]) { return a.box[0] < b.box[0]; }
    return a.text < b.text;
  }

  function overlaps(a, b) {
    return a.box[0] < b.box[2] && b.box[0] < a.box[2] && a.box[1] < b.box[3] && b.box[1] < a.box[3];
  }

  // a label is shown unless a label of higher priority overlaps it (decided from its neighbours
  // only, so the tiles on both sides of an edge agree)
  function placed(labels) {
    return labels.filter(function (a) {
      if (a.allow) { return true; }
      for (var i = 0; i < labels.length; i++) {
        var b = labels[i];
        if (b !== a && !b.allow && overlaps(a, b) && before(b, a) &&
            !(b.text === a.text && b.x === a.x && b.y === a.y)) {
          return false;
        }
      }
      return true;
    });
  }

  function drawLabel(ctx, lb, z) {
    var layer = lb.layer, f = lb.f;
    ctx.font = lb.font;
    ctx.textAlign = lb.align;
    ctx.textBaseline = "middle";
    ctx.globalAlpha = paintOf(layer, "text-opacity", z, f, 1);
    var halo = paintOf(layer, "text-halo-width", z, f, 0);
    var x = lb.align === "left" ? lb.left : lb.align === "right" ? lb.left + lb.w : lb.left + lb.w / 2;
    lb.lines.forEach(function (line, i) {
      var y = lb.top + lb.lh * (i + 0.5);
      if (halo > 0) {
        ctx.strokeStyle = paintOf(layer, "text-halo-color", z, f, "rgba(0,0,0,0)");
        ctx.lineWidth = halo * 2;
        ctx.lineJoin = "round";
        ctx.strokeText(line, x, y);
      }
      ctx.fillStyle = paintOf(layer, "text-color", z, f, "#000");
      ctx.fillText(line, x, y);
    });
    ctx.globalAlpha = 1;
  }

  // --- the layer -----------------------------------------------------------------------------------

  L.TianyaBasemap = L.GridLayer.extend({
    options: {
      tileSize: 512,
      minZoom: 1,  // Leaflet zoom; style zoom = Leaflet zoom - 1 (512-pixel tiles, as MapLibre)
      maxZoom: 24,
      updateWhenZooming: false,
      keepBuffer: 2,
      fontFamily: FONT,
      collisions: true,
      attribution: "底图 Base map © 天涯区 Tianya district",
      paintContainer: true  // the map's container takes the style's background colour
    },

    initialize: function (styleUrl, options) {
      L.GridLayer.prototype.initialize.call(this, options);
      this._styleUrl = new URL(styleUrl, document.baseURI).href;
      this._cache = new Map();
      this.stats = { tiles: 0, drawn: 0, empty: 0, failed: 0, features: 0, labels: 0 };
      this.style = null;
      this.error = null;
    },

    onAdd: function (map) {
      this._ready = this._ready || this._loadStyle();
      L.GridLayer.prototype.onAdd.call(this, map);
      var self = this;
      this._ready.then(function () {
        if (self._map && self.options.paintContainer && self._background) {
          self._oldBackground = self._map.getContainer().style.background;
          self._map.getContainer().style.background = self._background;
        }
      });
    },

    onRemove: function (map) {
      if (this._oldBackground !== undefined) {
        map.getContainer().style.background = this._oldBackground;
        this._oldBackground = undefined;
      }
      L.GridLayer.prototype.onRemove.call(this, map);
    },

    _loadStyle: function () {
      var self = this;
      return loadDecoder().then(function () {
        return fetch(self._styleUrl);
      }).then(function (r) {
        if (!r.ok) { throw new Error("style " + self._styleUrl + ": HTTP " + r.status); }
        return r.json();
      }).then(function (style) {
        var srcs = style.sources || {};
        return Promise.all(Object.keys(srcs).map(function (id) {
          var s = srcs[id];
          if (s.type !== "vector" || s.tiles || !s.url) { return null; }
          return fetch(new URL(s.url, self._styleUrl).href).then(function (r) { return r.json(); })
            .then(function (tj) {  // a TileJSON source: its tiles and zooms
              s.tiles = tj.tiles; s.minzoom = tj.minzoom; s.maxzoom = tj.maxzoom;
              s.attribution = s.attribution || tj.attribution;
            });
        })).then(function () { return style; });
      }).then(function (style) {
        self.style = style;
        var bg = (style.layers || []).filter(function (l) { return l.type === "background"; })[0];
        self._background = bg && evaluate((bg.paint || {})["background-color"], 10, null);
        var attributions = Object.keys(style.sources || {}).map(function (id) {
          return style.sources[id].attribution;
        }).filter(Boolean);
        if (attributions.length) { self._setAttribution(attributions.join(" · ")); }
        self.fire("styleload", { style: style });
      }).catch(function (err) {
        self.error = String(err && err.message || err);
        console.warn("tianya base map: " + self.error);
      });
    },

    _setAttribution: function (text) {
      var ctl = this._map && this._map.attributionControl;
      if (ctl) { ctl.removeAttribution(this.options.attribution); }
      this.options.attribution = text;
      if (ctl) { ctl.addAttribution(text); }
    },

    // one source tile (z/x/y of the source) as a decoded VectorTile, or null (204, failure)
    _sourceTile: function (id, src, z, x, y) {
      var key = id + "/" + z + "/" + x + "/" + y;
      var hit = this._cache.get(key);
      if (hit) {
        this._cache.delete(key);
        this._cache.set(key, hit);  // most recent last
        return hit;
      }
      var urls = src.tiles || [];
      var tmpl = urls[Math.abs(x + y) % Math.max(urls.length, 1)];
      var url = new URL(String(tmpl).replace("{z}", z).replace("{x}", x).replace("{y}", y),
        this._styleUrl).href;
      var p = fetch(url).then(function (r) {
        if (r.status === 204) { return { tile: null, status: "empty" }; }
        if (!r.ok) { return { tile: null, status: "failed" }; }
        return r.arrayBuffer().then(function (buf) {
          if (!buf.byteLength) { return { tile: null, status: "empty" }; }
          var vt = new vectorTile.VectorTile(new vectorTile.Pbf(new Uint8Array(buf)));
          return { tile: vt, status: "drawn" };
        });
      }).catch(function () { return { tile: null, status: "failed" }; });
      var cache = this._cache;
      p.then(function (res) {  // a failed tile is asked for again next time it is shown
        if (res.status === "failed" && cache.get(key) === p) { cache.delete(key); }
      });
      cache.set(key, p);
      while (this._cache.size > 128) { this._cache.delete(this._cache.keys().next().value); }
      return p;
    },

    createTile: function (coords, done) {
      var size = this.getTileSize();
      var ratio = window.devicePixelRatio || 1;
      var canvas = document.createElement("canvas");
      canvas.width = Math.round(size.x * ratio);
      canvas.height = Math.round(size.y * ratio);
      var z = coords.z - 1;  // the style's zoom (512-pixel tiles)
      canvas.dataset.tile = z + "/" + coords.x + "/" + coords.y;
      canvas.dataset.status = "blank";
      var self = this;
      this._ready.then(function () {
        return self._drawTile(canvas, z, coords.x, coords.y, ratio);
      }).catch(function (err) {
        canvas.dataset.status = "failed";
        self.stats.failed += 1;
        console.warn("tianya base map tile " + canvas.dataset.tile + ": " + err);
      }).then(function () { done(null, canvas); });
      return canvas;
    },

    _drawTile: function (canvas, z, x, y, ratio) {
      var self = this, style = this.style;
      if (!style) { return null; }  // no style: a transparent tile (the error is in layer.error)
      var S = this.getTileSize().x;
      var layers = (style.layers || []).filter(function (l) { return inZoom(l, z); });
      var used = {};
      layers.forEach(function (l) { if (l.source) { used[l.source] = true; } });
      var ids = Object.keys(used);
      return Promise.all(ids.map(function (id) {
        var src = style.sources[id] || {};
        var maxz = src.maxzoom === undefined ? 22 : src.maxzoom;
        var minz = src.minzoom === undefined ? 0 : src.minzoom;
        if (z < minz || src.type !== "vector") { return { tile: null, status: "empty" }; }
        var sz = Math.min(z, maxz), d = z - sz, n = Math.pow(2, d);
        var sx = Math.floor(x / n), sy = Math.floor(y / n);
        return self._sourceTile(id, src, sz, sx, sy).then(function (res) {
          return {
            tile: res.tile, status: res.status,
            transform: function (extent) {  // tile units → this canvas's pixels
              var k = S * n / extent;
              return { k: k, dx: (x - sx * n) * S, dy: (y - sy * n) * S };
            }
          };
        });
      })).then(function (results) {
        var sourceTiles = {}, status = ids.length ? "empty" : "drawn";
        results.forEach(function (r, i) {
          sourceTiles[ids[i]] = r;
          if (r.status === "failed") { status = "failed"; }
          else if (r.status === "drawn" && status !== "failed") { status = "drawn"; }
        });
        var ctx = canvas.getContext("2d");
        ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
        var origin = { x: x * S, y: y * S };
        // first the labels of every symbol layer, placed together; then the layers in order
        var items = layers.map(function (layer) {
          return layer.type === "background" ? [] : featuresOf(layer, sourceTiles, z);
        });
        var labels = [];
        layers.forEach(function (layer, order) {
          if (layer.type === "symbol") {
            labels.push.apply(labels, labelsOf(ctx, layer, items[order], z, order, origin,
              self.options.fontFamily));
          }
        });
        var shown = self.options.collisions ? placed(labels) : labels;
        layers.forEach(function (layer, order) {
          if (layer.type === "background") {
            ctx.globalAlpha = paintOf(layer, "background-opacity", z, null, 1);
            ctx.fillStyle = paintOf(layer, "background-color", z, null, "#000");
            ctx.fillRect(0, 0, S, S);
            ctx.globalAlpha = 1;
          } else if (layer.type === "fill") {
            drawFill(ctx, layer, items[order], z, self.stats);
          } else if (layer.type === "line") {
            drawLine(ctx, layer, items[order], z, self.stats);
          } else if (layer.type === "symbol") {
            shown.forEach(function (lb) { if (lb.order === order) { drawLabel(ctx, lb, z); } });
          }
        });
        self.stats.labels += shown.length;
        self.stats.tiles += 1;
        self.stats[status] += 1;
        canvas.dataset.status = status;
        canvas.dataset.labels = String(shown.length);
      });
    }
  });

  L.tianyaBasemap = function (styleUrl, options) { return new L.TianyaBasemap(styleUrl, options); };
})();
