/* The leaders' section on presence and coverage: for one day (China time), each inspector's
   minutes on duty in the patrol area and share of its streets passed, each sanitation vehicle's
   share of its road segments swept. Both tables come from /stats, as JSON, or as CSV links. */
(function () {
  'use strict';
  var esc = CityGrid.escapeHtml;
  var api = CityGrid.api;

  function chinaToday() {
    return new Date(Date.now() + 8 * 3600 * 1000).toISOString().slice(0, 10);
  }

  function query(params) {
    var q = new URLSearchParams(params);
    if (CityGrid.county) { q.set('county', CityGrid.county); }
    return q.toString();
  }

  function share(v) { return v === null || v === undefined ? '—' : (100 * v).toFixed(1) + '%'; }

  function table(rows, head, cells) {
    if (!rows.length) { return '<tr><td>无数据</td></tr>'; }
    return '<tr>' + head.map(function (h) { return '<th>' + esc(h) + '</th>'; }).join('') + '</tr>' +
      rows.map(function (r) {
        return '<tr data-row>' + cells(r).map(function (c) { return '<td>' + esc(c) + '</td>'; }).join('') + '</tr>';
      }).join('');
  }

  CityGrid.presence = function (map) {
    var box = CityGrid.panel(map, 'bottomright', 'cg-dashboard cg-presence');
    box.innerHTML =
      '<h3>在岗与清扫覆盖</h3><label>日期<input type="date" name="presence_day"></label>' +
      '<h4>监督员在岗 <a class="cg-presence-csv" download href="#">导出CSV</a></h4>' +
      '<table class="cg-presence-rows"></table>' +
      '<h4>环卫车辆清扫覆盖 <a class="cg-sweeping-csv" download href="#">导出CSV</a></h4>' +
      '<table class="cg-sweeping-rows"></table>';
    var day = box.querySelector('[name="presence_day"]');
    day.value = chinaToday();

    function refresh() {
      var asked = { date: day.value };
      box.querySelector('.cg-presence-csv').href = '/stats/presence?' + query(Object.assign({ format: 'csv' }, asked));
      box.querySelector('.cg-sweeping-csv').href = '/stats/sweeping?' + query(Object.assign({ format: 'csv' }, asked));
      var people = api('GET', '/stats/presence?' + query(asked)).then(function (doc) {
        box.querySelector('.cg-presence-rows').innerHTML = table(doc.rows,
          ['监督员', '网格', '在岗(分钟)', '道路巡查覆盖率'],
          function (r) { return [r.name || r.username, r.grids, r.on_duty_minutes, share(r.passed_share)]; });
        CityGrid.presenceRows = doc.rows.length;
      });
      var fleet = api('GET', '/stats/sweeping?' + query(asked)).then(function (doc) {
        box.querySelector('.cg-sweeping-rows').innerHTML = table(doc.rows,
          ['车牌号', '所属单位', '责任路段(米)', '清扫覆盖率'],
          function (r) { return [r.plate, r.company, r.assigned_m, share(r.swept_share)]; });
        CityGrid.sweepingRows = doc.rows.length;
      });
      return Promise.all([people, fleet]).then(function () {
        CityGrid.presenceDay = day.value;
      }).catch(function (error) {
        CityGrid.notice(map, 'presence', '在岗与清扫覆盖加载失败：' + error.message, true);
      });
    }
    day.addEventListener('change', refresh);
    refresh();
  };
})();
