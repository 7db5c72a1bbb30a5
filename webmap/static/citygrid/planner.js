/* The planner's tools: draw a line to split, a polygon to add, edit to redraw, select two to merge.
   Every change is saved through /grids; the answer's check report is drawn in red and listed. */
(function () {
  function localizeDraw() {
    var d = L.drawLocal;
    d.draw.toolbar.buttons.polyline = '画线拆分网格';
    d.draw.toolbar.buttons.polygon = '绘制新网格';
    d.draw.toolbar.actions.text = '取消';
    d.draw.toolbar.finish.text = '完成';
    d.draw.toolbar.undo.text = '删除最后一点';
    d.draw.handlers.polyline.tooltip = { start: '点击开始画拆分线', cont: '点击继续画线', end: '点击最后一点结束' };
    d.draw.handlers.polygon.tooltip = { start: '点击开始绘制网格', cont: '点击继续绘制', end: '点击第一个点闭合' };
    d.edit.toolbar.buttons.edit = '调整网格边界';
    d.edit.toolbar.buttons.editDisabled = '没有可调整的网格';
    d.edit.toolbar.actions.save.text = '保存';
    d.edit.toolbar.actions.cancel.text = '取消';
    d.edit.handlers.edit.tooltip = { text: '拖动节点调整边界', subtext: '点击“取消”放弃修改' };
  }

  var escapeHtml = CityGrid.escapeHtml;
  var api = CityGrid.api;

  CityGrid.planner = function (map) {
    localizeDraw();
    var sections = CityGrid.layers.grids_section;
    var problems = L.geoJSON(null, {
      pane: 'cgPoints',
      style: function () { return { color: '#c0392b', weight: 3, fillColor: '#e74c3c', fillOpacity: 0.6 }; },
      onEachFeature: function (feature, layer) {
        layer.bindPopup('<b>' + escapeHtml(feature.properties.kind_label) +
          '</b><br>' + escapeHtml(feature.properties.message));
      }
    }).addTo(map);

    var Panel = L.Control.extend({
      options: { position: 'bottomright' },
      onAdd: function () {
        var box = L.DomUtil.create('div', 'cg-planner');
        box.innerHTML = '<div class="cg-planner-message" role="status"></div>' +
          '<div class="cg-planner-actions"><button type="button" class="cg-merge">合并网格</button> ' +
          '<button type="button" class="cg-merge-save" disabled>确认合并</button></div>' +
          '<h4>网格问题</h4><div class="cg-problem-count">检查中…</div><ol class="cg-problems"></ol>';
        L.DomEvent.disableClickPropagation(box);
        return box;
      }
    });
    var panel = new Panel().addTo(map).getContainer();
    var message = panel.querySelector('.cg-planner-message');

    function say(text, isError) {
      message.textContent = text;
      message.className = 'cg-planner-message ' + (isError ? 'cg-error' : 'cg-info');
    }

    function showReport(report) {
      problems.clearLayers();
      var features = (report && report.problems && report.problems.features) || [];
      problems.addData(CityGrid.toDisplay(report.problems));
      panel.querySelector('.cg-problem-count').textContent =
        features.length ? '当前问题：' + features.length + ' 处' : '未发现问题';
      var list = panel.querySelector('.cg-problems');
      list.innerHTML = '';
      features.slice(0, 50).forEach(function (f) {
        var item = document.createElement('li');
        item.textContent = f.properties.kind_label + '：' + f.properties.message;
        item.addEventListener('click', function () {
          var p = CityGrid.toDisplay({ type: 'Point', coordinates: f.properties.location });
          map.setView([p.coordinates[1], p.coordinates[0]], Math.max(map.getZoom(), 16));
        });
        list.appendChild(item);
      });
    }

    function checkAll() {
      return api('POST', '/grids/check', {}).then(showReport)
        .catch(function (error) { say('检查失败：' + error.message, true); });
    }

    function reload() {
      ['grids_street', 'grids_community', 'grids_section'].forEach(function (key) {
        if (CityGrid.layers[key]) { CityGrid.layers[key].refresh(); }
      });
    }

    function save(label, request) {
      say(label + '保存中…', false);
      return request.then(function (change) {
        say(label + '成功：新增 ' + change.created.join('、') + '；停用 ' + change.closed.join('、'), false);
        showReport(change.report);
        reload();
        return checkAll();
      }).catch(function (error) {
        say(label + '未保存：' + error.message, true);
        if (error.report) { showReport(error.report); }
        reload();
      });
    }

    function toApi(layer) {
      return CityGrid.toApi({ type: 'Feature', properties: {}, geometry: layer.toGeoJSON().geometry }).geometry;
    }

    map.addControl(new L.Control.Draw({
      position: 'topleft',
      draw: {
        polyline: { shapeOptions: { color: '#c0392b', weight: 3 } },
        polygon: { allowIntersection: false, showArea: true, metric: true },
        rectangle: false, circle: false, marker: false, circlemarker: false
      },
      edit: { featureGroup: sections, remove: false }
    }));

    map.on(L.Draw.Event.CREATED, function (event) {
      var geometry = toApi(event.layer);
      if (event.layerType === 'polyline') {
        save('拆分网格', api('POST', '/grids/split', { line: geometry }));
      } else {
        save('新增网格', api('POST', '/grids', { geometry: geometry, level: 'section' }));
      }
    });
    map.on(L.Draw.Event.EDITED, function (event) {
      event.layers.eachLayer(function (layer) {
        var code = layer.feature.properties.code;
        save('调整网格 ' + code + ' 边界', api('POST', '/grids/' + code + '/redraw', { geometry: toApi(layer) }));
      });
    });

    var merging = false, chosen = {};
    var mergeButton = panel.querySelector('.cg-merge');
    var mergeSave = panel.querySelector('.cg-merge-save');
    function resetMerge() {
      Object.keys(chosen).forEach(function (code) { sections.resetStyle(chosen[code]); });
      chosen = {};
      mergeSave.disabled = true;
      mergeSave.textContent = '确认合并';
    }
    mergeButton.addEventListener('click', function () {
      merging = !merging;
      mergeButton.classList.toggle('cg-active', merging);
      resetMerge();
      say(merging ? '合并模式：依次点击要合并的相邻网格，再点“确认合并”' : '', false);
    });
    sections.on('click', function (event) {
      if (!merging) { return; }
      var layer = event.layer, code = layer.feature.properties.code;
      layer.closePopup();
      if (chosen[code]) { sections.resetStyle(layer); delete chosen[code]; } else {
        chosen[code] = layer;
        layer.setStyle({ color: '#d35400', weight: 3, fillColor: '#f5b041', fillOpacity: 0.5 });
      }
      var n = Object.keys(chosen).length;
      mergeSave.disabled = n < 2;
      mergeSave.textContent = '确认合并（' + n + '）';
    });
    mergeSave.addEventListener('click', function () {
      var codes = Object.keys(chosen);
      resetMerge();
      save('合并网格', api('POST', '/grids/merge', { codes: codes }));
    });

    map.on('popupopen', function (event) {
      var layer = event.popup._source, props = layer && layer.feature && layer.feature.properties;
      if (!props || !props.level || props.level !== 'section') { return; }
      var url = '/grids/stats?level=section&parent=' + encodeURIComponent(props.parent_code || '');
      api('GET', url).then(function (rows) {
        var row = rows.filter(function (r) { return r.code === props.code; })[0];
        if (!row) { return; }
        var f = row.features;
        event.popup.setContent(
          '<div class="cg-popup"><h4>' + escapeHtml(row.name) + '</h4><table>' +
          '<tr><th>网格编码</th><td>' + escapeHtml(row.code) + '</td></tr>' +
          '<tr><th>面积</th><td>' + Number(row.area_km2).toFixed(4) + ' km²</td></tr>' +
          '<tr><th>违法建设</th><td>' + f.illegal_buildings + '</td></tr>' +
          '<tr><th>户外广告招牌</th><td>' + f.billboards + '</td></tr>' +
          '<tr><th>扬尘六类现场</th><td>' + f.dust_sites + '</td></tr>' +
          '<tr><th>停车场</th><td>' + f.parking_lots + '</td></tr>' +
          '<tr><th>累计案件</th><td>' + row.cases + '</td></tr></table></div>');
      }).catch(function (error) { event.popup.setContent('统计加载失败：' + escapeHtml(error.message)); });
    });

    CityGrid.plannerReady = true;
    checkAll();
  };
}());
