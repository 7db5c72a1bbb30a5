/* The inspector's tools on a phone: report a case at a tapped point (with a photo), on a
   component, a merchant or a garbage point, record a dust-site inspection, a restaurant's fume
   check or a merchant's 门前三包 inspection, close a work order, pass or fail cases awaiting
   their on-site check.
   Everything is saved through the API with the page's session; its message is shown on failure. */
(function () {
  'use strict';
  var esc = CityGrid.escapeHtml;
  var api = CityGrid.api;

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function today() {
    var d = new Date();
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate());
  }

  function categoryOptions(categories) {
    var groups = {};
    var order = [];
    categories.forEach(function (c) {
      if (!groups[c.group]) { groups[c.group] = []; order.push(c.group); }
      groups[c.group].push('<option value="' + esc(c.code) + '">' + esc(c.label) + '</option>');
    });
    return '<option value="">请选择案件类别</option>' + order.map(function (g) {
      return '<optgroup label="' + esc(g) + '">' + groups[g].join('') + '</optgroup>';
    }).join('');
  }

  CityGrid.inspector = function (map, config) {
    var container = map.getContainer();
    container.classList.add('cg-inspector');
    var me = { username: '', display_name: '' };
    var marker = null;

    var toast = L.DomUtil.create('div', 'cg-toast', container);
    var sheet = L.DomUtil.create('div', 'cg-sheet', container);
    var bar = L.DomUtil.create('div', 'cg-toolbar', container);
    bar.innerHTML =
      '<button type="button" class="cg-report">上报案件</button>' +
      '<button type="button" class="cg-checks">待核查（0）</button>' +
      '<form method="post" action="/logout"><button type="submit">退出</button></form>';
    [toast, sheet, bar].forEach(function (el) {
      L.DomEvent.disableClickPropagation(el);
      L.DomEvent.disableScrollPropagation(el);
    });

    function say(text, isError) {
      toast.textContent = text || '';
      toast.className = 'cg-toast' + (text ? ' cg-shown' : '') + (isError ? ' cg-error' : '');
    }

    function closeSheet() {
      sheet.innerHTML = '';
      sheet.classList.remove('cg-open');
      if (marker) { map.removeLayer(marker); marker = null; }
    }

    /** Open a form in the bottom sheet; `submit` returns the API call's promise. */
    function openForm(title, fields, submit) {
      sheet.innerHTML = '<form class="cg-form" novalidate><h4>' + esc(title) + '</h4>' + fields +
        '<p class="cg-form-error" role="alert"></p><div class="cg-form-buttons">' +
        '<button type="submit" class="cg-submit">提交</button>' +
        '<button type="button" class="cg-cancel">取消</button></div></form>';
      sheet.classList.add('cg-open');
      var form = sheet.querySelector('form');
      var error = sheet.querySelector('.cg-form-error');
      var button = sheet.querySelector('.cg-submit');
      sheet.querySelector('.cg-cancel').addEventListener('click', function () { closeSheet(); say(''); });
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        var missing = Array.prototype.filter.call(form.elements, function (el) {
          return el.required && !String(el.value).trim();
        });
        if (missing.length) {
          error.textContent = '请填写：' + missing.map(function (el) { return el.getAttribute('data-label'); }).join('、');
          return;
        }
        button.disabled = true;
        error.textContent = '';
        submit(form).then(function (message) {
          closeSheet();
          say(message);
        }).catch(function (failure) {
          error.textContent = '未保存：' + failure.message;
        }).finally(function () { button.disabled = false; });
      });
      return form;
    }

    function refresh(key) { if (CityGrid.layers[key]) { CityGrid.layers[key].refresh(); } }

    // --- report a case at a tapped point, or on a tapped component ---------------------------
    function problemOptions() {
      return '<option value="">请选择问题类型</option>' + (config.problems || []).map(function (p) {
        return '<option value="' + esc(p.code) + '">' + esc(p.label) + '</option>';
      }).join('');
    }

    /** The case form at `latlng` (as shown); on a component its location (CGCS2000), its
        subclass as the locked category, its code and a choice of problem; on a `linked` row
        (a merchant, a garbage point: {field, feature, title, categories}) at its point, linked to
        it, its category from the short list that fits it. */
    function reportAt(latlng, component, linked) {
      marker = L.circleMarker(latlng, { radius: 10, color: '#1f3a93', weight: 3, fillColor: '#5dade2', fillOpacity: 0.8 })
        .addTo(map);
      var geometry = component ? { type: 'Point', coordinates: component.lonlat.slice(0, 2) }
        : CityGrid.toApi(linked ? linked.feature.geometry : { type: 'Point', coordinates: [latlng.lng, latlng.lat] });
      var subclass = component ? component.properties.subclass_code : '';
      var categories = (linked && linked.categories.length ? linked.categories : config.categories).slice();
      if (subclass && !categories.some(function (c) { return c.code === subclass; })) {
        // a county's own subclass: not in the standard list the form offers
        categories = categories.concat((config.subclasses || []).filter(function (c) { return c.code === subclass; }));
      }
      var componentFields = component ?
        '<p class="cg-component">部件标识码 ' + esc(component.properties.component_code || '') + '</p>' +
        '<input type="hidden" name="component_code" value="' + esc(component.properties.component_code || '') + '">' +
        '<label>问题类型<select name="problem" required data-label="问题类型">' + problemOptions() + '</select></label>' : '';
      var linkedFields = linked ?
        '<p class="cg-linked">' + esc(linked.title + '：' + (linked.feature.properties.name || linked.feature.id)) + '</p>' : '';
      var form = openForm(component ? '上报部件问题' : (linked ? '对此' + linked.title + '上报案件' : '上报案件'),
        componentFields + linkedFields +
        '<label>案件类别<select name="category_code" required data-label="案件类别"' + (component ? ' disabled' : '') + '>' +
          categoryOptions(categories) + '</select></label>' +
        '<label>问题描述<textarea name="description" rows="3" maxlength="500" required data-label="问题描述"></textarea></label>' +
        '<label>地址（选填）<input name="address" maxlength="200" autocomplete="off"></label>' +
        '<label>现场照片（选填）<input type="file" name="photo" accept="image/jpeg,image/png,image/webp" capture="environment"></label>',
        function (form) {
          var properties = { category_code: form.category_code.value, description: form.description.value.trim() };
          if (form.address.value.trim()) { properties.address = form.address.value.trim(); }
          if (component) {
            properties.component_code = form.component_code.value;
            properties.problem = form.problem.value;
          }
          if (linked) { properties[linked.field] = linked.feature.id; }
          var body = new FormData();
          body.append('feature', JSON.stringify({ type: 'Feature', geometry: geometry, properties: properties }));
          if (form.photo.files.length) { body.append('photo', form.photo.files[0]); }
          return api('POST', '/cases', body).then(function (doc) {
            refresh('open_cases');
            if (linked) { refresh(linked.layer); }  // a merchant's case may change its rating
            CityGrid.lastReported = doc.id;
            return '案件已上报，编号 ' + doc.id;
          });
        });
      if (component) { form.category_code.value = subclass; }
    }

    function componentActions(feature, latlng) {
      var box = L.DomUtil.create('div', 'cg-actions cg-component-report');
      var button = L.DomUtil.create('button', 'cg-report-component', box);
      button.type = 'button';
      button.textContent = '对此部件上报问题';
      button.addEventListener('click', function () {
        map.closePopup();
        closeSheet();
        reportAt(latlng, feature);
      });
      return box;
    }

    var components = CityGrid.layers[config.componentLayer];
    if (components) {
      components.on('citygrid:popup', function (event) {
        event.content.appendChild(componentActions(event.feature, event.latlng));
      });
    }

    bar.querySelector('.cg-report').addEventListener('click', function () {
      closeSheet();
      say('请在地图上点击案件位置');
      container.classList.add('cg-picking');
      map.once('click', function (event) {
        container.classList.remove('cg-picking');
        say('');
        reportAt(event.latlng);
      });
    });

    // --- dust sites: record an inspection, close a work order ---------------------------------
    function inspectionForm(feature) {
      openForm('记录督查：' + feature.properties.name,
        '<label>督查日期<input type="date" name="inspected_on" required data-label="督查日期" value="' + today() + '" max="' + today() + '"></label>' +
        '<label>发现问题数<input type="number" name="problems_found" min="0" step="1" value="0" required data-label="发现问题数"></label>' +
        '<label>问题描述（选填）<textarea name="problems" rows="3" maxlength="500"></textarea></label>',
        function (form) {
          var properties = {
            dust_site_id: feature.id,
            inspected_on: form.inspected_on.value,
            inspector: me.display_name || me.username,
            problems_found: Number(form.problems_found.value)
          };
          if (form.problems.value.trim()) { properties.problems = form.problems.value.trim(); }
          return api('POST', '/collections/dust_inspections/items',
            { type: 'Feature', geometry: null, properties: properties }).then(function () {
            refresh('dust_sites');
            return '督查记录已保存';
          });
        });
    }

    function closeOrder(order) {
      // on time or late is the server's to say, by the deadline and the bureau's date
      return api('POST', '/work_orders/' + order.id + '/rectified', {}).then(function (done) {
        refresh('dust_sites');
        map.closePopup();
        say('交办单 ' + order.id + ' 已整改完成（' + (done.result === 'late' ? '逾期整改' : '按期整改') + '）');
      }).catch(function (failure) { say('未保存：' + failure.message, true); });
    }

    function dustActions(feature) {
      var box = L.DomUtil.create('div', 'cg-actions');
      var record = L.DomUtil.create('button', 'cg-record', box);
      record.type = 'button';
      record.textContent = '记录督查';
      record.addEventListener('click', function () { map.closePopup(); inspectionForm(feature); });
      (feature.properties.open_work_orders || []).forEach(function (order) {
        var line = L.DomUtil.create('div', 'cg-order', box);
        line.innerHTML = '交办单 ' + esc(order.id) + '，整改期限 ' + esc(order.deadline) +
          (order.overdue ? '（已超期）' : '') + ' ';
        var done = L.DomUtil.create('button', 'cg-close-order', line);
        done.type = 'button';
        done.textContent = '整改完成';
        done.addEventListener('click', function () { done.disabled = true; closeOrder(order); });
      });
      return box;
    }

    // --- the reports' other systems: a fume check, a merchant's inspection, cases on them -------
    function options(list) {
      return list.map(function (o) {
        return '<option value="' + esc(o.code) + '">' + esc(o.label) + '</option>';
      }).join('');
    }

    function fumeCheckForm(feature) {
      openForm('记录油烟检查：' + feature.properties.name,
        '<label>检查日期<input type="date" name="checked_on" required data-label="检查日期" value="' + today() + '" max="' + today() + '"></label>' +
        '<label>净化器运行<select name="purifier_running" required data-label="净化器运行">' +
          '<option value="true">正常运行</option><option value="false">未运行</option></select></label>' +
        '<label>清洗记录日期（选填）<input type="date" name="cleaned_on" max="' + today() + '"></label>' +
        '<label>问题描述（选填）<textarea name="problems" rows="3" maxlength="500"></textarea></label>',
        function (form) {
          var properties = {
            restaurant_id: feature.id,
            checked_on: form.checked_on.value,
            inspector: me.display_name || me.username,
            purifier_running: form.purifier_running.value === 'true'
          };
          if (form.cleaned_on.value) { properties.cleaned_on = form.cleaned_on.value; }
          if (form.problems.value.trim()) { properties.problems = form.problems.value.trim(); }
          return api('POST', '/collections/fume_checks/items',
            { type: 'Feature', geometry: null, properties: properties }).then(function () {
            refresh('restaurants');
            return '油烟检查记录已保存';
          });
        });
    }

    function merchantInspectionForm(feature) {
      openForm('门前三包检查：' + feature.properties.name,
        '<label>检查日期<input type="date" name="inspected_on" required data-label="检查日期" value="' + today() + '" max="' + today() + '"></label>' +
        '<label>检查结果<select name="result" required data-label="检查结果"><option value="">请选择检查结果</option>' +
          options(config.inspectionResults || []) + '</select></label>' +
        '<label>问题描述（选填）<textarea name="problems" rows="3" maxlength="500"></textarea></label>',
        function (form) {
          var properties = {
            merchant_id: feature.id,
            inspected_on: form.inspected_on.value,
            inspector: me.display_name || me.username,
            result: form.result.value
          };
          if (form.problems.value.trim()) { properties.problems = form.problems.value.trim(); }
          return api('POST', '/collections/merchant_inspections/items',
            { type: 'Feature', geometry: null, properties: properties }).then(function () {
            refresh('merchants');  // the rating is the database's: the marker takes its new colour
            return '门前三包检查已保存';
          });
        });
    }

    function button(box, className, label, action) {
      var b = L.DomUtil.create('button', className, box);
      b.type = 'button';
      b.textContent = label;
      b.addEventListener('click', function () { map.closePopup(); closeSheet(); action(); });
    }

    function reportOn(feature, layer, field, title, categories) {
      var shown = feature.geometry.coordinates;
      reportAt(L.latLng(shown[1], shown[0]), null,
        { feature: feature, layer: layer, field: field, title: title, categories: categories || [] });
    }

    function restaurantActions(feature) {
      var box = L.DomUtil.create('div', 'cg-actions');
      button(box, 'cg-fume-check', '记录油烟检查', function () { fumeCheckForm(feature); });
      return box;
    }

    function merchantActions(feature) {
      var box = L.DomUtil.create('div', 'cg-actions');
      button(box, 'cg-merchant-inspect', '门前三包检查', function () { merchantInspectionForm(feature); });
      button(box, 'cg-merchant-case', '对此商户上报案件', function () {
        reportOn(feature, 'merchants', 'merchant_id', '商户', config.merchantCategories);
      });
      return box;
    }

    function garbagePointActions(feature) {
      var box = L.DomUtil.create('div', 'cg-actions');
      button(box, 'cg-garbage-case', '对此投放点上报案件', function () {
        reportOn(feature, 'garbage_points', 'garbage_point_id', '投放点', config.garbageCategories);
      });
      return box;
    }

    // --- cases awaiting their on-site check (核查) or verification (核实) ------------------------
    function waitingFor(flag) {
      var layer = CityGrid.layers.open_cases;
      return layer ? layer.getLayers().map(function (l) { return l.feature; })
        .filter(function (f) { return f.properties[flag]; }) : [];
    }
    function awaiting() { return waitingFor('awaiting_check'); }

    function verify(feature, found) {
      var body = { action: 'verify', verified: found, note: found ? null : '现场未发现所报问题' };
      return api('POST', '/cases/' + feature.id + '/transitions', body).then(function () {
        refresh('open_cases');
        return '案件 ' + feature.id + (found ? ' 核实属实，待立案' : ' 现场未发现，已作废');
      });
    }

    function verifyActions(feature) {
      var box = L.DomUtil.create('div', 'cg-actions');
      var limit = feature.properties.verify_deadline;
      if (limit) {
        L.DomUtil.create('div', 'cg-verify-by', box).textContent = '核实时限 ' + limit;
      }
      [['核实属实', true], ['现场未发现', false]].forEach(function (choice) {
        var button = L.DomUtil.create('button', choice[1] ? 'cg-confirm' : 'cg-not-found', box);
        button.type = 'button';
        button.textContent = choice[0];
        button.addEventListener('click', function () {
          button.disabled = true;
          verify(feature, choice[1]).then(function (message) { map.closePopup(); say(message); })
            .catch(function (failure) { say('未保存：' + failure.message, true); button.disabled = false; });
        });
      });
      return box;
    }

    function check(feature, passed, note) {
      return api('POST', '/cases/' + feature.id + '/check', { passed: passed, note: note || null })
        .then(function () {
          refresh('open_cases');
          return '案件 ' + feature.id + (passed ? ' 核查通过' : ' 核查未通过，已退回返工');
        });
    }

    function checkActions(feature) {
      var box = L.DomUtil.create('div', 'cg-actions');
      [['核查通过', true], ['核查不通过', false]].forEach(function (choice) {
        var button = L.DomUtil.create('button', choice[1] ? 'cg-pass' : 'cg-fail', box);
        button.type = 'button';
        button.textContent = choice[0];
        button.addEventListener('click', function () {
          button.disabled = true;
          check(feature, choice[1]).then(function (message) { map.closePopup(); say(message); })
            .catch(function (failure) { say('未保存：' + failure.message, true); button.disabled = false; });
        });
      });
      return box;
    }

    bar.querySelector('.cg-checks').addEventListener('click', function () {
      var waiting = awaiting();
      closeSheet();
      sheet.classList.add('cg-open');
      sheet.innerHTML = '<div class="cg-form"><h4>待核查案件（' + waiting.length + '）</h4><ul class="cg-check-list"></ul>' +
        '<div class="cg-form-buttons"><button type="button" class="cg-cancel">关闭</button></div></div>';
      sheet.querySelector('.cg-cancel').addEventListener('click', closeSheet);
      var list = sheet.querySelector('.cg-check-list');
      if (!waiting.length) { list.innerHTML = '<li>暂无待核查案件</li>'; }
      function listed(feature, actions) {
        var item = L.DomUtil.create('li', '', list);
        item.innerHTML = '<b>' + esc(feature.properties.category || '') + '</b> ' +
          esc(feature.properties.address || feature.properties.description || '') + ' ';
        item.appendChild(actions(feature));
      }
      waiting.forEach(function (feature) { listed(feature, checkActions); });
      var verifying = waitingFor('awaiting_verify');
      if (verifying.length) {
        var heading = L.DomUtil.create('li', 'cg-verify-heading', list);
        heading.innerHTML = '<h4>待核实案件（' + verifying.length + '）</h4>';
        verifying.forEach(function (feature) { listed(feature, verifyActions); });
      }
    });

    function onPopup(key, actions, wanted) {
      var layer = CityGrid.layers[key];
      if (!layer) { return; }
      layer.on('popupopen', function (event) {
        var feature = event.propagatedFrom && event.propagatedFrom.feature;
        var content = event.popup.getElement().querySelector('.leaflet-popup-content');
        if (feature && content && wanted(feature)) { content.appendChild(actions(feature)); }
      });
    }
    onPopup('dust_sites', dustActions, function () { return true; });
    onPopup('restaurants', restaurantActions, function () { return true; });
    onPopup('merchants', merchantActions, function () { return true; });
    onPopup('garbage_points', garbagePointActions, function () { return true; });
    onPopup('open_cases', checkActions, function (f) { return f.properties.awaiting_check; });
    onPopup('open_cases', verifyActions, function (f) { return f.properties.awaiting_verify; });

    if (CityGrid.layers.open_cases) {
      CityGrid.layers.open_cases.on('citygrid:loaded', function () {
        var verifying = waitingFor('awaiting_verify').length;
        bar.querySelector('.cg-checks').textContent = '待核查（' + awaiting().length + '）' +
          (verifying ? ' 待核实（' + verifying + '）' : '');
      });
    }

    api('GET', '/auth/me').then(function (doc) {
      me = doc;
      var title = container.querySelector('.cg-title');
      if (title) { title.textContent = '我的巡查区域 · ' + (doc.display_name || doc.username); }
      CityGrid.inspectorReady = true;
    }).catch(function (failure) { say(failure.message, true); });
  };
}());
