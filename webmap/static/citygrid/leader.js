/* The leaders' dashboard: a heatmap re-aggregated by the API for every view, a choropleth of the
   chosen indicator per grid, the departments' evaluation ranking with grades and the month's
   bulletin, the ten worst grids, a weekly trend by class, overdue cases; and the animated weekly
   heatmap of the timeline page. The browser only ever receives aggregates. */
(function () {
  'use strict';
  var esc = CityGrid.escapeHtml;
  var api = CityGrid.api;
  var RAMP = ['#fff5eb', '#fdbe85', '#fd8d3c', '#e6550d', '#a63603'];
  var LINES = ['#c0392b', '#2874a6', '#1e8449', '#8e44ad', '#d68910', '#566573'];
  var RATES = { closed_rate: true, on_time_rate: true };

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) { if (params[k]) { q.set(k, params[k]); } });
    if (CityGrid.county) { q.set('county', CityGrid.county); }  // the county the page is for
    return q.toString();
  }

  function shown(lat, lon) {
    if (CityGrid.datum !== 'gcj02') { return [lat, lon]; }
    var g = CityGrid.gcj02.fromWgs84(lon, lat);
    return [g[1], g[0]];
  }

  /** The period of the data: the last twelve months the cases cover. */
  function defaultPeriod() {
    return api('GET', '/collections/cases').then(function (doc) {
      var last = doc.extent && doc.extent.temporal && doc.extent.temporal.interval[0][1];
      var end = last ? new Date(last) : new Date();
      var start = new Date(end.getTime() - 364 * 86400000);
      return { from: start.toISOString().slice(0, 10), to: end.toISOString().slice(0, 10) };
    });
  }

  function format(value, measure) {
    if (value === null || value === undefined) { return '—'; }
    if (RATES[measure]) { return (value * 100).toFixed(1) + '%'; }
    return Number(value).toLocaleString('zh-CN', { maximumFractionDigits: 2 });
  }

  /** The month whose bulletin (通报) stands for the period: the period's own month when it lies
      in one, else the last full month it ends with. */
  function bulletinMonth(p) {
    if (!p.to) { return null; }
    var to = new Date(p.to + 'T00:00:00Z');
    var monthEnds = new Date(to.getTime() + 86400000).getUTCDate() === 1;
    if (monthEnds || (p.from && p.from.slice(0, 7) === p.to.slice(0, 7))) { return p.to.slice(0, 7); }
    return new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
  }

  /** Departments best first: by score (none last), then by name. */
  function ranked(rows) {
    return rows.slice().sort(function (a, b) {
      var sa = a.score === null ? -1 : a.score, sb = b.score === null ? -1 : b.score;
      if (sa !== sb) { return sb - sa; }
      return a.key < b.key ? -1 : (a.key > b.key ? 1 : 0);
    });
  }

  function breaks(values) {
    var sorted = values.filter(function (v) { return v !== null && v !== undefined; })
      .sort(function (a, b) { return a - b; });
    if (!sorted.length) { return []; }
    return [0.2, 0.4, 0.6, 0.8].map(function (q) { return sorted[Math.floor(q * (sorted.length - 1))]; });
  }

  function colour(value, cuts) {
    if (value === null || value === undefined) { return '#d5d8dc'; }
    var i = 0;
    while (i < cuts.length && value > cuts[i]) { i += 1; }
    return RAMP[i];
  }

  function trendSvg(rows, classes) {
    var periods = Array.from(new Set(rows.map(function (r) { return r.period; }))).sort();
    var names = {};
    classes.forEach(function (c) { names[c.code] = c.label; });
    var series = {};
    rows.forEach(function (r) {
      series[r['class']] = series[r['class']] || {};
      series[r['class']][r.period] = r.cases;
    });
    var ranked = Object.keys(series).sort(function (a, b) {
      var sum = function (k) { return Object.values(series[k]).reduce(function (s, v) { return s + v; }, 0); };
      return sum(b) - sum(a);
    }).slice(0, LINES.length);
    var max = Math.max.apply(null, rows.map(function (r) { return r.cases; }).concat([1]));
    var w = 320, h = 140, left = 34, bottom = 16;
    var x = function (i) { return left + (periods.length > 1 ? i * (w - left - 4) / (periods.length - 1) : 0); };
    var y = function (v) { return h - bottom - v * (h - bottom - 6) / max; };
    var lines = ranked.map(function (code, n) {
      var points = periods.map(function (p, i) { return x(i).toFixed(1) + ',' + y(series[code][p] || 0).toFixed(1); });
      return '<polyline class="cg-trend-line" data-class="' + esc(code) + '" fill="none" stroke="' + LINES[n] +
        '" stroke-width="1.6" points="' + points.join(' ') + '"/>';
    });
    var legend = ranked.map(function (code, n) {
      return '<span><i style="background:' + LINES[n] + '"></i>' + esc(names[code] || code) + '</span>';
    });
    return '<svg class="cg-trend" viewBox="0 0 ' + w + ' ' + h + '" role="img" aria-label="每周案件数">' +
      '<text x="2" y="10" font-size="9">' + max.toLocaleString('zh-CN') + '</text>' +
      '<text x="2" y="' + (h - bottom) + '" font-size="9">0</text>' +
      '<line x1="' + left + '" y1="' + (h - bottom) + '" x2="' + w + '" y2="' + (h - bottom) + '" stroke="#999"/>' +
      (periods.length ? '<text x="' + left + '" y="' + (h - 3) + '" font-size="9">' + esc(periods[0]) + '</text>' +
        '<text x="' + (w - 60) + '" y="' + (h - 3) + '" font-size="9">' + esc(periods[periods.length - 1]) + '</text>' : '') +
      lines.join('') + '</svg><div class="cg-trend-legend">' + legend.join('') + '</div>';
  }

  CityGrid.leader = function (map, config) {
    var state = { category: '', level: 'section', measure: 'cases', street: '' };
    var heat = L.heatLayer([], { radius: 18, blur: 16, minOpacity: 0.25, pane: 'cgPoints' }).addTo(map);
    var grids = L.geoJSON(null, {
      pane: 'cgGrids',
      style: function () { return { color: '#5d6d7e', weight: 0.8, fillOpacity: 0.55 }; },
      onEachFeature: function (feature, layer) {
        layer.on('click', function () {
          var p = feature.properties;
          layer.bindPopup('<div class="cg-popup"><h4>' + esc(p.name) + '</h4><table>' +
            Object.keys(config.measures).map(function (m) {
              return '<tr><th>' + esc(config.measures[m]) + '</th><td>' + esc(format(p[m], m)) + '</td></tr>';
            }).join('') + '</table></div>').openPopup();
        });
      }
    }).addTo(map);
    CityGrid.layers.heat = heat;
    CityGrid.layers.choropleth = grids;
    CityGrid.dashboard = state;

    var box = CityGrid.panel(map, 'topleft', 'cg-dashboard cg-leader');
    var option = function (value, label) { return '<option value="' + esc(value) + '">' + esc(label) + '</option>'; };
    box.innerHTML =
      '<h3>领导驾驶舱</h3>' +
      '<div class="cg-filters">' +
      '<label>起<input type="date" name="from"></label><label>止<input type="date" name="to"></label>' +
      '<label>类别<select name="category">' + option('', '全部类别') +
        config.classes.map(function (c) { return option(c.code, c.label); }).join('') + '</select></label>' +
      '<label>街道<select name="street">' + option('', '全县') + '</select></label>' +
      '<label>层级<select name="level">' + Object.keys(config.levels).map(function (k) {
        return option(k, config.levels[k]); }).join('') + '</select></label>' +
      '<label>指标<select name="measure">' + Object.keys(config.measures).map(function (k) {
        return option(k, config.measures[k]); }).join('') + '</select></label></div>' +
      '<div class="cg-legend-ramp"></div>' +
      '<h4>部门考核排名</h4><p class="cg-bulletin"></p><table class="cg-ranking"></table>' +
      '<h4>问题最突出的十个网格 <a class="cg-csv" href="#" download>导出CSV</a></h4><table class="cg-worst"></table>' +
      '<h4>每周案件数（按大类）</h4><div class="cg-trend-box"></div>' +
      '<h4>超期未结案件 <span class="cg-overdue-count"></span></h4><ol class="cg-overdue"></ol>' +
      '<h4>部件案件（按<select name="unit_by">' + option('maintainer', '养护单位') + option('owner', '权属单位') +
        '</select>）</h4><table class="cg-units"></table>';
    var field = function (name) { return box.querySelector('[name="' + name + '"]'); };
    field('level').value = state.level;

    function period() { return { from: field('from').value, to: field('to').value }; }

    function refreshHeat() {
      var params = Object.assign({ bbox: CityGrid.viewBBox(map).join(','), zoom: map.getZoom(),
        category: state.category, within: state.street }, period());
      return api('GET', '/stats/heatmap?' + query(params)).then(function (doc) {
        heat.setOptions({ max: Math.max(doc.max, 1) });
        heat.setLatLngs(doc.bins.map(function (b) { return shown(b[1], b[0]).concat([b[2]]); }));
        CityGrid.heatTotal = doc.total;
        CityGrid.notice(map, 'heat', '视图内案件 ' + doc.total.toLocaleString('zh-CN') + ' 件（' + doc.cell_m + ' 米格网）');
      }).catch(function (error) { CityGrid.notice(map, 'heat', '热力图加载失败：' + error.message, true); });
    }

    function refreshGrids() {
      var params = Object.assign({ level: state.level, category: state.category, within: state.street }, period());
      var byLevel = Object.assign({ by: state.level, category: state.category, within: state.street }, period());
      field('measure').disabled = false;
      box.querySelector('.cg-csv').href = '/stats/indicators?' + query(Object.assign({ format: 'csv' }, byLevel));
      return api('GET', '/stats/choropleth?' + query(params)).then(function (doc) {
        var features = doc.features;  // each grid with its cases and its indicators, joined by the API
        var m = state.measure;
        var cuts = breaks(features.map(function (f) { return f.properties[m]; }));
        grids.clearLayers();
        grids.addData(CityGrid.toDisplay({ type: 'FeatureCollection', features: features }));
        grids.eachLayer(function (layer) {
          layer.setStyle({ fillColor: colour(layer.feature.properties[m], cuts) });
        });
        var ramp = RAMP.map(function (c, i) {
          var low = i === 0 ? null : cuts[i - 1], high = cuts[i];
          var text = i === 0 ? '≤ ' + format(high, m) : (i === RAMP.length - 1 ? '> ' + format(low, m) : format(low, m) + ' – ' + format(high, m));
          return '<div><i style="background:' + c + '"></i>' + esc(text) + '</div>';
        });
        box.querySelector('.cg-legend-ramp').innerHTML = '<b>' + esc(config.measures[m]) + '</b>' + (cuts.length ? ramp.join('') : '<div>无数据</div>');
        var worst = features.filter(function (f) { return f.properties[m] !== null && f.properties[m] !== undefined; })
          .sort(function (a, b) {
            return RATES[m] ? a.properties[m] - b.properties[m] : b.properties[m] - a.properties[m];
          }).slice(0, 10);
        box.querySelector('.cg-worst').innerHTML = '<tr><th>排名</th><th>网格</th><th>' + esc(config.measures[m]) + '</th></tr>' +
          worst.map(function (f, i) {
            return '<tr data-code="' + esc(f.properties.code) + '"><td>' + (i + 1) + '</td><td>' + esc(f.properties.name) +
              '</td><td>' + esc(format(f.properties[m], m)) + '</td></tr>';
          }).join('');
        CityGrid.choroplethCount = features.length;
      }).catch(function (error) { CityGrid.notice(map, 'grids', '网格统计加载失败：' + error.message, true); });
    }

    function refreshTrend() {
      var params = Object.assign({ interval: 'week', category: state.category, within: state.street }, period());
      return api('GET', '/stats/trend?' + query(params)).then(function (rows) {
        box.querySelector('.cg-trend-box').innerHTML = rows.length ? trendSvg(rows, config.classes) : '无数据';
      }).catch(function (error) { CityGrid.notice(map, 'trend', '趋势加载失败：' + error.message, true); });
    }

    function refreshOverdue() {
      var params = { category: state.category, within: state.street, top: 10 };
      return api('GET', '/stats/overdue?' + query(params)).then(function (doc) {
        box.querySelector('.cg-overdue-count').textContent = '（' + doc.count.toLocaleString('zh-CN') + ' 件）';
        CityGrid.overdueCount = doc.count;
        box.querySelector('.cg-overdue').innerHTML = doc.cases.map(function (c) {
          return '<li>' + esc(c.category || '') + ' · ' + esc(c.address || c.grid_code || '') +
            ' · 时限 ' + esc(String(c.deadline || '').slice(0, 10)) + '</li>';
        }).join('');
      }).catch(function (error) { CityGrid.notice(map, 'overdue', error.message, true); });
    }

    /** The handling departments' evaluation for the period, best first, with the month's bulletin;
        an answer that comes after a newer question is dropped. */
    var rankingAsked = 0;
    function refreshRanking() {
      var p = period();
      var month = bulletinMonth(p);
      var asked = ++rankingAsked;
      var link = function (format, label) {
        return '<a class="cg-bulletin-' + format + '" download href="/reports/monthly?' +
          esc(query({ month: month, format: format })) + '">' + label + '</a>';
      };
      box.querySelector('.cg-bulletin').innerHTML = month ? esc(month.replace('-', '年') + '月') +
        '通报：' + link('docx', '下载通报 Word') + ' / ' + link('pdf', 'PDF') : '';
      CityGrid.bulletinMonth = month;
      var params = Object.assign({ object: 'department' }, p);
      return api('GET', '/stats/evaluation?' + query(params)).then(function (doc) {
        if (asked !== rankingAsked) { return; }
        var rows = ranked(doc.rows);
        var rate = function (v) { return format(v, 'closed_rate'); };
        box.querySelector('.cg-ranking').innerHTML =
          '<tr><th>名次</th><th>单位</th><th>得分</th><th>等级</th><th>按期处置率</th><th>处置率</th>' +
          '<th>返工率</th><th>督办</th></tr>' +
          (rows.length ? rows.map(function (r, i) {
            var grade = r.grade ? '<span class="cg-grade cg-grade-' + esc(r.grade) + '">' + esc(r.grade) + '</span>' : '—';
            return '<tr data-unit="' + esc(r.key) + '"><td>' + (r.score === null ? '—' : i + 1) + '</td><td>' + esc(r.label) +
              '</td><td>' + esc(r.score === null ? '—' : r.score.toFixed(2)) + '</td><td>' + grade + '</td><td>' +
              esc(rate(r.on_time_handled_rate)) + '</td><td>' + esc(rate(r.handled_rate)) + '</td><td>' +
              esc(rate(r.rework_rate)) + '</td><td>' + esc(String(r.supervised)) + '</td></tr>';
          }).join('') : '<tr><td colspan="8">本期无应处置案件</td></tr>');
        CityGrid.rankingRows = rows.map(function (r) { return [r.key, r.score, r.grade]; });
        CityGrid.rankingRound = (CityGrid.rankingRound || 0) + 1;
      }).catch(function (error) { CityGrid.notice(map, 'ranking', '部门考核排名加载失败：' + error.message, true); });
    }

    /** Cases on components in the period, per owner or maintainer of the component, most first. */
    function refreshUnits() {
      var params = Object.assign({ by: field('unit_by').value, category: state.category, within: state.street }, period());
      return api('GET', '/stats/indicators?' + query(params)).then(function (doc) {
        var rows = doc.rows.filter(function (r) { return r.key !== null && (r.registered || r.due); })
          .sort(function (a, b) { return b.registered - a.registered || b.due - a.due; }).slice(0, 10);
        box.querySelector('.cg-units').innerHTML = '<tr><th>单位</th><th>立案数</th><th>结案率</th><th>超期数</th></tr>' +
          (rows.length ? rows.map(function (r) {
            return '<tr data-unit="' + esc(r.key) + '"><td>' + esc(r.key) + '</td><td>' + esc(format(r.registered, 'cases')) +
              '</td><td>' + esc(format(r.closed_rate, 'closed_rate')) + '</td><td>' + esc(format(r.overdue, 'overdue')) + '</td></tr>';
          }).join('') : '<tr><td colspan="4">无部件案件</td></tr>');
        CityGrid.unitRows = rows.map(function (r) { return [r.key, r.registered]; });
        CityGrid.unitsRound = (CityGrid.unitsRound || 0) + 1;
      }).catch(function (error) { CityGrid.notice(map, 'units', '部件案件统计加载失败：' + error.message, true); });
    }

    function refreshAll() {
      CityGrid.dashboardRound = (CityGrid.dashboardRound || 0) + 1;
      return Promise.all([refreshHeat(), refreshGrids(), refreshRanking(), refreshTrend(), refreshOverdue(),
        refreshUnits()]);
    }

    ['from', 'to', 'category', 'level', 'measure'].forEach(function (name) {
      field(name).addEventListener('change', function () {
        state[name] = field(name).value;
        if (name === 'measure') { refreshGrids(); } else { refreshAll(); }
      });
    });
    field('unit_by').addEventListener('change', refreshUnits);
    field('street').addEventListener('change', function () {
      state.street = field('street').value;
      var chosen = streets[state.street];
      if (chosen) { map.fitBounds(chosen.getBounds()); } else if (CityGrid.layers.county) {
        map.fitBounds(CityGrid.layers.county.getBounds());
      }
      refreshAll();
    });
    map.on('moveend', L.Util.throttle(refreshHeat, 400));

    var streets = {};
    api('GET', '/grids?' + query({ level: 'street' })).then(function (doc) {
      L.geoJSON(CityGrid.toDisplay(doc)).eachLayer(function (layer) {
        streets[layer.feature.properties.code] = layer;
        field('street').insertAdjacentHTML('beforeend', option(layer.feature.properties.code, layer.feature.properties.name));
      });
    });
    defaultPeriod().then(function (p) {
      field('from').value = p.from;
      field('to').value = p.to;
      return refreshAll();
    }).then(function () { CityGrid.leaderReady = true; });
  };

  /** The weekly heatmap animation: folium's HeatMapWithTime player, fed with the API's frames. */
  CityGrid.timeline = function (map, config) {
    defaultPeriod().then(function (p) {
      return api('GET', '/stats/heatmap/frames?' + query({ zoom: 11, interval: 'week', from: p.from, to: p.to }));
    }).then(function (doc) {
      var labels = doc.frames.map(function (f) { return f.period + ' 起一周（' + f.total + ' 件）'; });
      var data = doc.frames.map(function (f) {
        return f.bins.map(function (b) { return shown(b[1], b[0]).concat([b[2]]); });
      });
      map.timeDimension = L.timeDimension({ times: labels.map(function (_, i) { return i + 1; }), currentTime: new Date(1) });
      new L.Control.TimeDimensionCustom(labels, {
        autoPlay: false, loopButton: true, timeSliderDragUpdate: true, position: 'bottomleft',
        playerOptions: { transitionTime: 500, loop: true }, speedSlider: true, timeSteps: 1
      }).addTo(map);
      var layer = new TDHeatmap(data, {
        heatmapOptions: { radius: 18, blur: 0.85, minOpacity: 0, maxOpacity: 0.7, scaleRadius: false,
          useLocalExtrema: false, defaultWeight: 1 }
      });
      layer.addTo(map);
      CityGrid.timelineFrames = doc.frames.length;
      CityGrid.timelineReady = true;
    }).catch(function (error) { CityGrid.notice(map, 'timeline', '动画数据加载失败：' + error.message, true); });
  };
}());
