/* citygrid: data layers fetched from the API by view, GCJ-02 display shift, Chinese map UI. */
(function () {
  'use strict';

  // GCJ-02 (Amap/Tencent) offset: the published formula forward, fixed-point iteration back.
  var A = 6378245.0;
  var EE = 0.00669342162296594323;

  function inChina(lon, lat) {
    return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271;
  }

  function offset(lon, lat) {
    var x = lon - 105.0, y = lat - 35.0, PI = Math.PI;
    var periodic = (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x)) + periodic;
    dlat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    dlat += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x)) + periodic;
    dlon += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    dlon += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var radLat = lat / 180.0 * PI;
    var magic = 1 - EE * Math.sin(radLat) * Math.sin(radLat);
    var sqrtMagic = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((A * (1 - EE)) / (magic * sqrtMagic) * PI);
    dlon = (dlon * 180.0) / (A / sqrtMagic * Math.cos(radLat) * PI);
    return [dlon, dlat];
  }

  var gcj02 = {
    fromWgs84: function (lon, lat) {
      if (!inChina(lon, lat)) { return [lon, lat]; }
      var d = offset(lon, lat);
      return [lon + d[0], lat + d[1]];
    },
    toWgs84: function (lon, lat) {
      var w = [lon, lat];
      for (var i = 0; i < 30; i++) {
        var g = gcj02.fromWgs84(w[0], w[1]);
        var ex = g[0] - lon, ey = g[1] - lat;
        w = [w[0] - ex, w[1] - ey];
        if (Math.abs(ex) < 1e-10 && Math.abs(ey) < 1e-10) { break; }
      }
      return w;
    }
  };

  function mapCoords(coords, fn) {
    if (typeof coords[0] === 'number') { return fn(coords[0], coords[1]).concat(coords.slice(2)); }
    return coords.map(function (c) { return mapCoords(c, fn); });
  }

  function shiftGeometry(geometry, fn) {
    if (!geometry) { return geometry; }
    if (geometry.type === 'GeometryCollection') {
      return { type: geometry.type, geometries: geometry.geometries.map(function (g) { return shiftGeometry(g, fn); }) };
    }
    return { type: geometry.type, coordinates: mapCoords(geometry.coordinates, fn) };
  }

  function shiftGeoJSON(doc, fn) {
    if (doc.type === 'FeatureCollection') {
      return Object.assign({}, doc, { features: doc.features.map(function (f) { return shiftGeoJSON(f, fn); }) });
    }
    if (doc.type === 'Feature') { return Object.assign({}, doc, { geometry: shiftGeometry(doc.geometry, fn) }); }
    return shiftGeometry(doc, fn);
  }

  function escapeHtml(value) {
    return String(value).replace(/[&<>"']/g, function (c) {
      return { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c];
    });
  }

  function formatValue(value, field) {
    if (value === null || value === undefined || value === '') { return '—'; }
    if (field.codes && field.codes[value] !== undefined) { return field.codes[value]; }
    if (field.type === 'real') { return Number(value).toLocaleString('zh-CN', { maximumFractionDigits: 2 }); }
    if (field.type === 'timestamp') { return String(value).replace('T', ' ').slice(0, 16); }
    return value;
  }

  function popupHtml(title, fields, feature) {
    var rows = fields.filter(function (field) {  // an optional field shows only when it has a value
      var value = feature.properties[field.name];
      return !field.optional || (value !== null && value !== undefined && value !== '');
    }).map(function (field) {
      return '<tr><th>' + escapeHtml(field.label) + '</th><td>' +
        escapeHtml(formatValue(feature.properties[field.name], field)) + '</td></tr>';
    });
    return '<div class="cg-popup"><h4>' + escapeHtml(title) + '</h4><table>' + rows.join('') + '</table></div>';
  }

  var CityGrid = {
    datum: 'wgs84',
    county: null,
    layers: {},
    pending: 0,
    gcj02: gcj02,
    shiftGeoJSON: shiftGeoJSON,

    /** Data from the API (CGCS2000) as the base map needs it. */
    toDisplay: function (doc) {
      return CityGrid.datum === 'gcj02' ? shiftGeoJSON(doc, gcj02.fromWgs84) : doc;
    },

    /** Shapes drawn on the map, back in CGCS2000 before they are sent to the API. */
    toApi: function (doc) {
      return CityGrid.datum === 'gcj02' ? shiftGeoJSON(doc, gcj02.toWgs84) : doc;
    },

    /** The current view as an API bbox (west,south,east,north in CGCS2000). */
    viewBBox: function (map) {
      var b = map.getBounds();
      var corners = [[b.getWest(), b.getSouth()], [b.getEast(), b.getNorth()],
        [b.getWest(), b.getNorth()], [b.getEast(), b.getSouth()]];
      if (CityGrid.datum === 'gcj02') {
        corners = corners.map(function (c) { return gcj02.toWgs84(c[0], c[1]); });
      }
      var xs = corners.map(function (c) { return Math.max(-180, Math.min(180, c[0])); });
      var ys = corners.map(function (c) { return Math.max(-90, Math.min(90, c[1])); });
      return [Math.min.apply(null, xs), Math.min.apply(null, ys), Math.max.apply(null, xs), Math.max.apply(null, ys)]
        .map(function (v) { return v.toFixed(6); });
    },

    /** True when no data layer is waiting for the API. */
    idle: function () { return CityGrid.pending === 0; },

    /** Show a message in the map's status box (errors stay until the next success). */
    notice: function (map, key, text, isError) {
      var box = map.getContainer().querySelector('.cg-status');
      if (!box) { return; }
      var line = box.querySelector('[data-key="' + key + '"]');
      if (!text) { if (line) { line.remove(); } return; }
      if (!line) {
        line = document.createElement('div');
        line.setAttribute('data-key', key);
        box.appendChild(line);
      }
      line.className = isError ? 'cg-error' : 'cg-info';
      line.textContent = text;
    },

    /** An empty panel in a corner of the map that keeps its clicks and scrolling to itself. */
    panel: function (map, position, className) {
      var control = L.control({ position: position });
      control.onAdd = function () {
        var div = L.DomUtil.create('div', className);
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        return div;
      };
      control.addTo(map);
      return control.getContainer();
    },

    /** Leaflet's own controls in Chinese, and the status box data layers report to. */
    localize: function (map) {
      var zoomIn = map.getContainer().querySelector('.leaflet-control-zoom-in');
      var zoomOut = map.getContainer().querySelector('.leaflet-control-zoom-out');
      if (zoomIn) { zoomIn.title = '放大'; zoomIn.setAttribute('aria-label', '放大'); }
      if (zoomOut) { zoomOut.title = '缩小'; zoomOut.setAttribute('aria-label', '缩小'); }
      if (map.attributionControl) { map.attributionControl.setPrefix('Leaflet'); }
      // Fixed drawing order whatever order the layers load in: outline, grids, areas, points.
      [['cgBase', 350], ['cgGrids', 410], ['cgAreas', 420], ['cgLines', 430], ['cgPoints', 450]].forEach(function (p) {
        map.createPane(p[0]).style.zIndex = String(p[1]);
      });
      var Status = L.Control.extend({
        options: { position: 'bottomleft' },
        onAdd: function () { return L.DomUtil.create('div', 'cg-status'); }
      });
      new Status().addTo(map);
    },

    /** Who is signed in, and a way out, in the map's corner. */
    account: function (map) {
      var Account = L.Control.extend({
        options: { position: 'topright' },
        onAdd: function () {
          var box = L.DomUtil.create('form', 'cg-account');
          box.method = 'post';
          box.action = '/logout';
          L.DomEvent.disableClickPropagation(box);
          CityGrid.api('GET', '/auth/me').then(function (me) {
            box.innerHTML = '<span>' + escapeHtml((me.display_name || me.username) + '（' + me.role_label + '）') +
              '</span> <button type="submit">退出</button>';
          }).catch(function () { box.remove(); });
          return box;
        }
      });
      new Account().addTo(map);
    },

    /** Measure a distance, and from three points the area they enclose, by clicking on the map.
        Our own control in leaflet-measure's look: that plugin compiles its templates with eval at
        load, which the pages' Content-Security-Policy refuses. */
    measureControl: function (map) {
      var control = new MeasureControl();
      map.addControl(control);
      return control;
    },

    /** Metres along the clicked points, and the enclosed area in m² (on the sphere) from three. */
    measure: function (latlngs) {
      var length = 0, area = 0, rad = Math.PI / 180, R = 6378137;
      for (var i = 1; i < latlngs.length; i++) { length += latlngs[i - 1].distanceTo(latlngs[i]); }
      if (latlngs.length > 2) {
        for (var j = 0; j < latlngs.length; j++) {
          var a = latlngs[j], b = latlngs[(j + 1) % latlngs.length];
          area += (b.lng - a.lng) * rad * (2 + Math.sin(a.lat * rad) + Math.sin(b.lat * rad));
        }
        area = Math.abs(area * R * R / 2);
      }
      return { length: length, area: area };
    },

    escapeHtml: escapeHtml,

    /** Call the API with the page's session; resolves with the JSON answer, rejects with its Chinese message.
        Changes carry the token the page was rendered with: the server refuses cookie writes without it. */
    api: function (method, path, body, headers) {
      var isForm = typeof FormData !== 'undefined' && body instanceof FormData;
      var sent = Object.assign(isForm || body === undefined ? {} : { 'Content-Type': 'application/json' }, headers || {});
      var token = document.querySelector('meta[name="csrf-token"]');
      if (method !== 'GET' && method !== 'HEAD' && token) { sent['X-CSRF-Token'] = token.content; }
      CityGrid.pending += 1;
      return fetch(path, {
        method: method, credentials: 'same-origin', headers: sent,
        body: body === undefined ? undefined : (isForm ? body : JSON.stringify(body))
      }).then(function (response) {
        var etag = response.headers.get('ETag');
        return response.text().then(function (raw) {
          var doc = raw ? JSON.parse(raw) : {};
          if (!response.ok) {
            var error = new Error(doc.message || ('服务器返回 ' + response.status));
            error.report = doc.report;
            error.status = response.status;
            throw error;
          }
          if (etag && doc && typeof doc === 'object') { Object.defineProperty(doc, 'etag', { value: etag }); }
          return doc;
        });
      }).finally(function () { CityGrid.pending -= 1; });
    },

    /** A GeoJSON layer that loads the features in view from the API and reloads as the map moves. */
    apiLayer: function (options) { return new ApiLayer(options); },

    /** A point layer drawn from the API's vector tiles: counted clusters below its cluster zoom,
        single points coloured by a property above it, a popup on tap (event `citygrid:popup`
        with its content, to which a page may add actions). */
    tiledPoints: function (options) { return new (tiledPointsClass())(options); },

    popupHtml: popupHtml
  };

  // --- tiled point layers (Leaflet.VectorGrid, loaded after this file) ---------------------------
  var TiledPoints = null;
  var MERCATOR = L.CRS.EPSG3857;

  function clusterRadius(count) { return Math.min(30, 10 + 4 * Math.log(count) / Math.LN10 * 1.6); }

  /** The tile-pixel position of a point of a tile layer, with the longitude/latitude it stands for. */
  function tilePointLonLat(coords, size, extent, p) {
    var ll = MERCATOR.pointToLatLng(L.point(coords.x * size + p.x * size / extent,
      coords.y * size + p.y * size / extent), coords.z);
    return [ll.lng, ll.lat];
  }

  function tiledPointsClass() {
    if (TiledPoints) { return TiledPoints; }
    TiledPoints = L.VectorGrid.Protobuf.extend({
      initialize: function (options) {
        var cg = this.cg = options;
        var self = this;
        var styles = {};
        styles[cg.layer] = function (properties, zoom) {
          if (zoom < cg.clusterBelowZoom) {
            return { radius: clusterRadius(properties.count || 1), color: '#ffffff', weight: 2,
              fill: true, fillColor: cg.clusterColor || '#e67e22', fillOpacity: 0.85 };
          }
          var color = (cg.colorBy && cg.colorBy.colors[String(properties[cg.colorBy.field])]) || cg.style.color;
          return Object.assign({}, cg.style, { fill: true, color: '#ffffff', fillColor: color, fillOpacity: 0.95, radius: 6 });
        };
        L.VectorGrid.Protobuf.prototype.initialize.call(this, cg.url, {
          rendererFactory: function (coords, size, opts) {
            var renderer = L.svg.tile(coords, size, opts);
            renderer.getContainer().cgRenderer = renderer;
            // points moved for a GCJ-02 base map may fall past their tile's edge: draw them anyway
            renderer.getContainer().style.overflow = 'visible';
            return renderer;
          },
          vectorTileLayerStyles: styles,
          interactive: true,
          pane: cg.pane || 'overlayPane',
          maxNativeZoom: 22,
          // tiles depend on who asks: sent with the page's session cookie, as every API call
          fetchOptions: { credentials: 'same-origin' }
        });
        CityGrid.layers[cg.key] = this;
        this._busy = false;
        this.on('loading', function () {
          if (!this._busy) { this._busy = true; CityGrid.pending += 1; }
        });
        this.on('load', function () {
          if (this._busy) { this._busy = false; CityGrid.pending -= 1; }
          this.fire('citygrid:loaded');
        });
        this.on('tileload', function (event) { self._label(event.tile, event.coords); });
        this.on('click', this._tapped, this);
      },

      onRemove: function (map) {
        if (this._busy) { this._busy = false; CityGrid.pending -= 1; }
        map.closePopup();
        L.VectorGrid.Protobuf.prototype.onRemove.call(this, map);
      },

      /** Each point's longitude/latitude (CGCS2000) kept, and shown shifted on a GCJ-02 base map. */
      _getVectorTilePromise: function (coords) {
        var size = this.getTileSize().x;
        return L.VectorGrid.Protobuf.prototype._getVectorTilePromise.call(this, coords).then(function (tile) {
          Object.keys(tile.layers).forEach(function (name) {
            var layer = tile.layers[name];
            layer.features.forEach(function (feat) {
              if (feat.type !== 1) { return; }
              var p = feat.geometry[0][0];
              feat.lonlat = tilePointLonLat(coords, size, layer.extent, p);
              if (CityGrid.datum === 'gcj02') {
                var g = gcj02.fromWgs84(feat.lonlat[0], feat.lonlat[1]);
                var q = MERCATOR.latLngToPoint(L.latLng(g[1], g[0]), coords.z);
                p.x = (q.x - coords.x * size) * layer.extent / size;
                p.y = (q.y - coords.y * size) * layer.extent / size;
              }
            });
          });
          return tile;
        });
      },

      _createLayer: function (feat, pxPerExtent) {
        var layer = L.VectorGrid.Protobuf.prototype._createLayer.call(this, feat, pxPerExtent);
        layer.featureId = feat.id;
        layer.lonlat = feat.lonlat;
        if (feat.lonlat) {
          // Leaflet takes a small circle for a marker and asks where it is on every tap
          var shown = CityGrid.toDisplay({ type: 'Point', coordinates: feat.lonlat }).coordinates;
          layer._latlng = L.latLng(shown[1], shown[0]);
        }
        return layer;
      },

      /** Counts written on the clusters of a loaded tile. */
      _label: function (container, coords) {
        var renderer = container.cgRenderer;
        if (!renderer || coords.z >= this.cg.clusterBelowZoom) { return; }
        Object.keys(renderer._layers).forEach(function (id) {
          var symbol = renderer._layers[id];
          var text = L.SVG.create('text');
          text.setAttribute('x', symbol._point.x);
          text.setAttribute('y', symbol._point.y);
          text.setAttribute('class', 'cg-cluster-count');
          text.setAttribute('text-anchor', 'middle');
          text.setAttribute('dominant-baseline', 'central');
          text.textContent = String(symbol.properties.count);
          renderer._rootGroup.appendChild(text);
        });
      },

      /** A cluster zooms in on a tap; a single point opens its popup. */
      _tapped: function (event) {
        var symbol = event.propagatedFrom || event.layer;
        var map = this._map, cg = this.cg;
        if (!symbol || !symbol.properties || !map) { return; }
        if (map.getZoom() < cg.clusterBelowZoom) {
          map.setView(event.latlng, Math.min(map.getZoom() + 2, cg.clusterBelowZoom));
          return;
        }
        var feature = { id: symbol.featureId, properties: symbol.properties, lonlat: symbol.lonlat };
        var latlng = symbol._latlng || event.latlng;
        var content = L.DomUtil.create('div');
        content.innerHTML = popupHtml(cg.title, cg.fields, feature);
        this.fire('citygrid:popup', { feature: feature, latlng: latlng, content: content });  // pages add actions
        L.popup({ maxWidth: 320 }).setLatLng(latlng).setContent(content).openOn(map);
      },

      /** What the loaded tiles of the current zoom draw inside the view, each point once (a point
          in a tile's buffer is drawn by its neighbour as well): clusters and single points. */
      inView: function () {
        var map = this._map, out = { clusters: [], points: [] };
        if (!map) { return out; }
        var bounds = map.getBounds(), size = this.getTileSize().x, cg = this.cg;
        Object.keys(this._tiles).forEach(function (key) {
          var tile = this._tiles[key];
          var renderer = tile.el.cgRenderer;
          if (!tile.current || !tile.loaded || !renderer) { return; }
          Object.keys(renderer._layers).forEach(function (id) {
            var symbol = renderer._layers[id], p = symbol._point;
            if (p.x < 0 || p.y < 0 || p.x >= size || p.y >= size) { return; }
            var shown = MERCATOR.pointToLatLng(L.point(tile.coords.x * size + p.x, tile.coords.y * size + p.y), tile.coords.z);
            if (!bounds.contains(shown)) { return; }
            if (tile.coords.z < cg.clusterBelowZoom) {
              out.clusters.push({ count: symbol.properties.count, lonlat: symbol.lonlat });
            } else {
              out.points.push({ id: symbol.featureId, properties: symbol.properties, lonlat: symbol.lonlat,
                fill: symbol.options.fillColor });
            }
          });
        }, this);
        return out;
      }
    });
    return TiledPoints;
  }

  function number(value, digits) {
    return value.toLocaleString('zh-CN', { maximumFractionDigits: digits });
  }

  var MeasureControl = L.Control.extend({
    options: { position: 'topleft' },

    onAdd: function (map) {
      var box = L.DomUtil.create('div', 'leaflet-control-measure leaflet-bar leaflet-control');
      var toggle = L.DomUtil.create('a', 'leaflet-control-measure-toggle', box);
      toggle.href = '#';
      toggle.title = '测量距离和面积';
      toggle.setAttribute('role', 'button');
      toggle.textContent = '测量';
      this._panel = L.DomUtil.create('div', 'leaflet-control-measure-interaction', box);
      this._panel.hidden = true;
      this._drawn = L.layerGroup().addTo(map);
      this._points = [];
      L.DomEvent.disableClickPropagation(box);
      L.DomEvent.disableScrollPropagation(box);
      L.DomEvent.on(toggle, 'click', function (event) {
        L.DomEvent.preventDefault(event);
        if (this._panel.hidden) { this._start(); } else { this._cancel(); }
      }, this);
      L.DomEvent.on(this._panel, 'click', function (event) {
        var task = event.target.getAttribute('data-task');
        if (!task) { return; }
        L.DomEvent.preventDefault(event);
        if (task === 'finish') { this._finish(); } else { this._cancel(); }
      }, this);
      return box;
    },

    onRemove: function (map) { this._cancel(); map.removeLayer(this._drawn); },

    _start: function () {
      this._cancel();
      this._panel.hidden = false;
      this._map.doubleClickZoom.disable();
      // features would take the clicks (and open their popups): let them through to the map
      L.DomUtil.addClass(this._map.getContainer(), 'cg-measuring');
      this._map.on('click', this._add, this);
      this._show();
    },

    _add: function (event) {
      this._points.push(event.latlng);
      this._drawn.clearLayers();
      var style = { color: '#d35400', weight: 3, dashArray: '6 4', interactive: false };
      if (this._points.length > 2) {
        L.polygon(this._points, Object.assign({ fillOpacity: 0.1 }, style)).addTo(this._drawn);
      } else if (this._points.length === 2) {
        L.polyline(this._points, style).addTo(this._drawn);
      }
      this._points.forEach(function (p) {
        L.circleMarker(p, { radius: 4, color: '#d35400', fillOpacity: 1, interactive: false }).addTo(this._drawn);
      }, this);
      this._show();
    },

    _stopCapture: function () {
      if (!this._map) { return; }
      this._map.off('click', this._add, this);
      this._map.doubleClickZoom.enable();
      L.DomUtil.removeClass(this._map.getContainer(), 'cg-measuring');
    },

    _finish: function () { this._stopCapture(); this._show(true); },

    _cancel: function () {
      this._stopCapture();
      this._points = [];
      if (this._drawn) { this._drawn.clearLayers(); }
      if (this._panel) { this._panel.hidden = true; this._panel.innerHTML = ''; }
    },

    _show: function (finished) {
      var m = CityGrid.measure(this._points);
      var lines = [];
      if (this._points.length < 2) {
        lines.push('<p>在地图上依次点击要测量的点</p>');
      } else {
        lines.push('<p class="cg-measure-length">距离：' + number(m.length, 1) + ' 米（' + number(m.length / 1000, 3) + ' 公里）</p>');
      }
      if (this._points.length > 2) {
        lines.push('<p class="cg-measure-area">面积：' + number(m.area, 0) + ' 平方米（' + number(m.area / 10000, 2) + ' 公顷）</p>');
      }
      var tasks = (finished ? '' : '<li><a href="#" class="finish" data-task="finish">完成</a></li>') +
        '<li><a href="#" class="cancel" data-task="cancel">' + (finished ? '清除' : '取消') + '</a></li>';
      this._panel.innerHTML = '<h3>测量距离和面积</h3>' + lines.join('') + '<ul class="tasks">' + tasks + '</ul>';
    }
  });

  // The sector a camera watches: its bearing (degrees clockwise from north), its field of view
  // and its range in metres, as a ring of lat/lngs around the point (null without a bearing).
  function sectorLatLngs(latlng, properties, sector) {
    var bearing = properties[sector.direction], angle = properties[sector.angle];
    if (bearing === null || bearing === undefined || !angle) { return null; }
    var range = (sector.range && properties[sector.range]) || sector.defaultRange;
    var metresPerDegree = 111320, cosLat = Math.cos(latlng.lat * Math.PI / 180);
    var steps = Math.max(2, Math.ceil(angle / 10)), ring = angle >= 360 ? [] : [latlng];
    for (var i = 0; i <= steps; i += 1) {
      var b = (bearing - angle / 2 + angle * i / steps) * Math.PI / 180;
      ring.push(L.latLng(latlng.lat + range * Math.cos(b) / metresPerDegree,
        latlng.lng + range * Math.sin(b) / (metresPerDegree * cosLat)));
    }
    return ring;
  }

  var ApiLayer = L.GeoJSON.extend({
    initialize: function (options) {
      var self = this;
      this.cg = options;
      this.loaded = 0;
      // colorBy: {field, colors: {value: colour}}: one colour per value of a property.
      function featureStyle(feature) {
        var by = options.colorBy;
        if (!by || !feature) { return options.style; }
        var color = by.colors[String(feature.properties[by.field])] || options.style.color;
        return Object.assign({}, options.style, { color: color, fillColor: color });
      }
      L.GeoJSON.prototype.initialize.call(this, null, {
        style: featureStyle,
        pointToLayer: function (feature, latlng) {
          var marker = L.circleMarker(latlng, featureStyle(feature));
          var ring = options.sector && sectorLatLngs(latlng, feature.properties, options.sector);
          if (!ring) { return marker; }
          var look = Object.assign({}, featureStyle(feature), { weight: 1, className: 'cg-sector' });
          return L.featureGroup([L.polygon(ring, look), marker]);
        },
        onEachFeature: function (feature, layer) {
          layer.bindPopup(popupHtml(options.title, options.fields, feature), { maxWidth: 320 });
        },
        interactive: options.interactive !== false,
        pane: options.pane || 'overlayPane'
      });
      CityGrid.layers[options.key] = this;
      this._refresh = L.Util.throttle(function () { self.refresh(); }, 300, this);
    },

    onAdd: function (map) {
      L.GeoJSON.prototype.onAdd.call(this, map);
      map.on('moveend', this._refresh, this);
      this.refresh();
    },

    onRemove: function (map) {
      map.off('moveend', this._refresh, this);
      this._showClusters(false);
      if (this._abort) { this._abort.abort(); }
      CityGrid.notice(map, this.cg.key, null);
      L.GeoJSON.prototype.onRemove.call(this, map);
    },

    /** clusters: {layer, url, clusterBelowZoom, clusterColor}: the layer's counted cells from its
        vector tiles (CityGrid.layers[key + '_clusters']) while the map is zoomed out below that. */
    _showClusters: function (shown) {
      var cg = this.cg, map = this._map;
      if (!cg.clusters) { return false; }
      if (!this._clusters && shown) {
        this._clusters = CityGrid.tiledPoints(Object.assign({}, cg.clusters, {
          key: cg.key + '_clusters', title: cg.title, style: cg.style, colorBy: cg.colorBy,
          fields: cg.fields, pane: cg.pane
        }));
      }
      if (!this._clusters) { return false; }
      if (shown && map && !map.hasLayer(this._clusters)) { map.addLayer(this._clusters); }
      if (!shown && this._clusters._map) { this._clusters._map.removeLayer(this._clusters); }
      return shown;
    },

    refresh: function () {
      var map = this._map, cg = this.cg, self = this;
      if (!map) { return; }
      var zoomedOut = cg.clusters && map.getZoom() < cg.clusters.clusterBelowZoom;
      if (this._showClusters(Boolean(zoomedOut))) {
        if (this._abort) { this._abort.abort(); this._abort = null; CityGrid.pending -= 1; }
        this.clearLayers();
        this.loaded = 0;
        CityGrid.notice(map, cg.key, null);
        this.fire('citygrid:loaded');
        return;
      }
      if (cg.minZoom && map.getZoom() < cg.minZoom) {
        this.clearLayers();
        this.loaded = 0;
        CityGrid.notice(map, cg.key, cg.title + '：放大到 ' + cg.minZoom + ' 级后显示');
        return;
      }
      if (this._abort) { this._abort.abort(); } else { CityGrid.pending += 1; }
      var abort = new AbortController();
      this._abort = abort;
      var params = new URLSearchParams(cg.params || {});
      if (!cg.whole) {
        params.set('bbox', CityGrid.viewBBox(map).join(','));
        params.set('limit', String(cg.limit || 1000));
      }
      fetch(cg.url + '?' + params.toString(), { credentials: 'same-origin', signal: abort.signal })
        .then(function (response) {
          return response.json().then(function (body) { return { ok: response.ok, body: body }; });
        })
        .then(function (result) {
          if (!result.ok) { throw new Error(result.body.message || '服务器返回错误'); }
          self.clearLayers();
          self.addData(CityGrid.toDisplay(result.body));
          self.loaded = self.getLayers().length;
          if (cg.fit && !self._fitted && self.loaded) { self._fitted = true; map.fitBounds(self.getBounds()); }
          var capped = cg.limit && result.body.numberReturned >= cg.limit;
          CityGrid.notice(map, cg.key, capped ? cg.title + '：当前视图仅显示 ' + cg.limit + ' 条，请放大查看更多' : null);
          self.fire('citygrid:loaded');
        })
        .catch(function (error) {
          if (error.name === 'AbortError') { return; }
          CityGrid.notice(map, cg.key, cg.title + '加载失败：' + error.message, true);
        })
        .finally(function () {
          if (self._abort === abort) { self._abort = null; CityGrid.pending -= 1; }
        });
    }
  });

  window.CityGrid = CityGrid;
}());
