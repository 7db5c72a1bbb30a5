/* The leaders' view of the bureau's other systems: the monthly fume exceedance rate of the twelve
   months up to the newest reading, and the 门前三包 merchants per red/yellow/green rating per
   street. Every figure is the API's (/stats/fume, /stats/merchants); the page embeds none. */
(function () {
  'use strict';
  var esc = CityGrid.escapeHtml;
  var api = CityGrid.api;
  var RATINGS = [['red', '红色', '#c0392b'], ['yellow', '黄色', '#d4ac0d'], ['green', '绿色', '#1e8449']];

  function query(params) {
    var q = new URLSearchParams();
    Object.keys(params).forEach(function (k) { if (params[k]) { q.set(k, params[k]); } });
    if (CityGrid.county) { q.set('county', CityGrid.county); }  // the county the page is for
    return q.toString();
  }

  function percent(rate) { return rate === null || rate === undefined ? '—' : (rate * 100).toFixed(1) + '%'; }

  /** The twelve months (YYYY-MM) ending with `last`, oldest first. */
  function twelveMonths(last) {
    var year = Number(last.slice(0, 4)), month = Number(last.slice(5, 7)) - 1;
    var out = [];
    for (var i = 11; i >= 0; i--) {
      out.push(new Date(Date.UTC(year, month - i, 1)).toISOString().slice(0, 7));
    }
    return out;
  }

  function lastDay(month) {
    var d = new Date(Date.UTC(Number(month.slice(0, 4)), Number(month.slice(5, 7)), 0));
    return d.toISOString().slice(0, 10);
  }

  /** A line of the monthly rates (a month without readings leaves a gap), its scale from 0. */
  function trendSvg(months, rates) {
    var w = 320, h = 130, left = 38, bottom = 16;
    var known = rates.filter(function (r) { return r !== null; });
    var max = Math.max.apply(null, known.concat([0.05]));
    var x = function (i) { return left + i * (w - left - 6) / (months.length - 1); };
    var y = function (v) { return h - bottom - v * (h - bottom - 8) / max; };
    var points = [];
    rates.forEach(function (r, i) {
      if (r === null) { return; }
      points.push('<circle class="cg-fume-point" data-month="' + esc(months[i]) + '" cx="' + x(i).toFixed(1) +
        '" cy="' + y(r).toFixed(1) + '" r="2.5" fill="#a04000"><title>' + esc(months[i] + ' 超标率 ' + percent(r)) +
        '</title></circle>');
    });
    var segments = [], current = [];
    rates.forEach(function (r, i) {
      if (r === null) {
        if (current.length) { segments.push(current); }
        current = [];
      } else {
        current.push(x(i).toFixed(1) + ',' + y(r).toFixed(1));
      }
    });
    if (current.length) { segments.push(current); }
    var lines = segments.map(function (s) {
      return '<polyline class="cg-fume-line" fill="none" stroke="#a04000" stroke-width="1.6" points="' + s.join(' ') + '"/>';
    });
    return '<svg class="cg-trend cg-fume-chart" viewBox="0 0 ' + w + ' ' + h + '" role="img" aria-label="每月油烟超标率">' +
      '<text x="2" y="12" font-size="9">' + percent(max) + '</text>' +
      '<text x="2" y="' + (h - bottom) + '" font-size="9">0%</text>' +
      '<line x1="' + left + '" y1="' + (h - bottom) + '" x2="' + w + '" y2="' + (h - bottom) + '" stroke="#999"/>' +
      '<text x="' + left + '" y="' + (h - 3) + '" font-size="9">' + esc(months[0]) + '</text>' +
      '<text x="' + (w - 40) + '" y="' + (h - 3) + '" font-size="9">' + esc(months[months.length - 1]) + '</text>' +
      lines.join('') + points.join('') + '</svg>';
  }

  function ratingBar(row) {
    var total = row.red + row.yellow + row.green;
    return '<div class="cg-rating-bar">' + RATINGS.map(function (r) {
      var share = total ? 100 * row[r[0]] / total : 0;
      return share ? '<i style="width:' + share.toFixed(1) + '%;background:' + r[2] + '" title="' +
        esc(r[1] + ' ' + row[r[0]]) + '"></i>' : '';
    }).join('') + '</div>';
  }

  CityGrid.leaderSystems = function (map) {
    var box = CityGrid.panel(map, 'bottomright', 'cg-dashboard cg-systems');
    box.innerHTML =
      '<h4>油烟超标率（近12个月） <a class="cg-fume-csv" href="#" download>导出CSV</a></h4>' +
      '<div class="cg-fume-trend">加载中…</div>' +
      '<h4>门前三包商户评级（按街道） <a class="cg-ratings-csv" download href="/stats/merchants?' +
        esc(query({ by: 'street', format: 'csv' })) + '">导出CSV</a></h4>' +
      '<table class="cg-ratings"></table>';

    var fume = api('GET', '/collections/fume_readings/items?' + query({ limit: 1 })).then(function (doc) {
      var newest = doc.features.length ? doc.features[0].properties.time : null;
      if (!newest) {
        CityGrid.fumeTrend = [];
        box.querySelector('.cg-fume-trend').textContent = '无监测数据';
        return null;
      }
      var months = twelveMonths(newest.slice(0, 7));  // the reading's own China-time month
      var period = { by: 'month', from: months[0] + '-01', to: lastDay(months[11]) };
      box.querySelector('.cg-fume-csv').href = '/stats/fume?' + query(Object.assign({ format: 'csv' }, period));
      return api('GET', '/stats/fume?' + query(period)).then(function (stats) {
        var byMonth = {};
        stats.rows.forEach(function (r) { if (r.key !== null) { byMonth[r.key] = r.exceedance_rate; } });
        var rates = months.map(function (m) { return m in byMonth ? byMonth[m] : null; });
        CityGrid.fumeTrend = months.map(function (m, i) { return [m, rates[i]]; });
        var total = stats.rows[stats.rows.length - 1];
        box.querySelector('.cg-fume-trend').innerHTML = trendSvg(months, rates) +
          '<p class="cg-fume-total">12个月合计：' + esc(total.readings.toLocaleString('zh-CN')) + ' 条数据，超标 ' +
          esc(total.exceeded.toLocaleString('zh-CN')) + ' 条，超标率 ' + esc(percent(total.exceedance_rate)) + '</p>';
      });
    }).catch(function (error) { CityGrid.notice(map, 'fume', '油烟超标率加载失败：' + error.message, true); });

    var ratings = api('GET', '/stats/merchants?' + query({ by: 'street' })).then(function (doc) {
      CityGrid.ratingRows = doc.rows.map(function (r) { return [r.label, r.red, r.yellow, r.green]; });
      box.querySelector('.cg-ratings').innerHTML =
        '<tr><th>街道</th>' + RATINGS.map(function (r) { return '<th>' + r[1] + '</th>'; }).join('') +
        '<th>合计</th><th>占比</th></tr>' +
        doc.rows.map(function (r) {
          return '<tr' + (r.total ? ' class="cg-total"' : ' data-code="' + esc(r.key || '') + '"') + '><td>' +
            esc(r.label || r.key || '') + '</td>' + RATINGS.map(function (c) { return '<td>' + esc(String(r[c[0]])) + '</td>'; }).join('') +
            '<td>' + esc(String(r.merchants)) + '</td><td>' + ratingBar(r) + '</td></tr>';
        }).join('');
    }).catch(function (error) { CityGrid.notice(map, 'ratings', '商户评级加载失败：' + error.message, true); });

    Promise.all([fume, ratings]).then(function () { CityGrid.systemsReady = true; });
  };
}());
