/* The command centre's live map (大指挥): one server-sent event stream (/tracking/live) moves the
   vehicles and inspectors and raises the alarms as they are committed; filters by kind and company;
   a tracker's track of a chosen period played back along its `times`. */
(function () {
  'use strict';
  var esc = CityGrid.escapeHtml;
  var UNREGISTERED = 'unregistered';
  var PERSON_COLOR = '#8e44ad';

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function localInput(d) {
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' +
      pad(d.getHours()) + ':' + pad(d.getMinutes());
  }
  function shortTime(iso) {
    var d = new Date(iso);
    return pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + pad(d.getHours()) + ':' +
      pad(d.getMinutes()) + ':' + pad(d.getSeconds());
  }
  function latLng(feature) {
    var shown = CityGrid.toDisplay(feature);
    return L.latLng(shown.geometry.coordinates[1], shown.geometry.coordinates[0]);
  }

  CityGrid.command = function (map, config) {
    var live = {
      trackers: {}, alarms: {}, rounds: 0, connected: false, offlineMinutes: 10, skewMs: 0,
      toasts: 0
    };
    CityGrid.live = live;
    var vehicles = L.featureGroup().addTo(map);
    var people = L.featureGroup().addTo(map);
    var alarmMarkers = L.featureGroup().addTo(map);
    var trackLayer = L.featureGroup().addTo(map);
    CityGrid.layers.vehicles = vehicles;
    CityGrid.layers.people = people;
    CityGrid.layers.alarms = alarmMarkers;
    CityGrid.layers.track = trackLayer;

    var container = map.getContainer();
    var toast = L.DomUtil.create('div', 'cg-command-toast', container);
    toast.setAttribute('role', 'alert');
    var Panel = L.Control.extend({
      options: { position: 'topleft' },
      onAdd: function () {
        var div = L.DomUtil.create('div', 'cg-command');
        L.DomEvent.disableClickPropagation(div);
        L.DomEvent.disableScrollPropagation(div);
        var kinds = Object.keys(config.kinds).map(function (k) {
          return '<label><input type="checkbox" name="kind" value="' + esc(k) + '" checked>' +
            esc(config.kinds[k]) + '</label>';
        }).join('') + '<label><input type="checkbox" name="kind" value="' + UNREGISTERED +
          '" checked>未登记</label>';
        var speeds = config.speeds.map(function (s) {
          return '<option value="' + s + '"' + (s === 60 ? ' selected' : '') + '>' + s + '倍速</option>';
        }).join('');
        var now = new Date();
        div.innerHTML =
          '<h4>实时监控 <span class="cg-live-state">连接中…</span></h4>' +
          '<div class="cg-counts"></div>' +
          '<fieldset class="cg-kinds"><legend>类型</legend>' + kinds + '</fieldset>' +
          '<label class="cg-company">所属单位 <select name="company"><option value="">全部单位</option></select></label>' +
          '<h4>报警 <span class="cg-alarm-count">（0）</span></h4><ul class="cg-alarm-list"></ul>' +
          '<h4>轨迹回放</h4><div class="cg-playback">' +
          '<select name="tracker"><option value="">选择车辆或人员</option></select>' +
          '<label>从 <input type="datetime-local" name="from" value="' + localInput(new Date(now - 2 * 3600e3)) + '"></label>' +
          '<label>至 <input type="datetime-local" name="to" value="' + localInput(new Date(now.getTime() + 600e3)) + '"></label>' +
          '<button type="button" class="cg-play-load">回放</button>' +
          '<button type="button" class="cg-play-toggle" disabled>暂停</button>' +
          '<select name="speed">' + speeds + '</select>' +
          '<div class="cg-play-status"></div></div>';
        return div;
      }
    });
    var panel = new Panel().addTo(map).getContainer();
    function $(selector) { return panel.querySelector(selector); }

    // --- filters ------------------------------------------------------------------------
    function kindOf(p) { return p.kind || UNREGISTERED; }
    function shownKinds() {
      var on = {};
      panel.querySelectorAll('input[name=kind]').forEach(function (box) { on[box.value] = box.checked; });
      return on;
    }
    function passes(kind, company) {
      var chosen = $('select[name=company]').value;
      return shownKinds()[kind] !== false && (!chosen || company === chosen);
    }
    function applyFilters() {
      Object.keys(live.trackers).forEach(function (id) { place(live.trackers[id]); });
      Object.keys(live.alarms).forEach(function (id) { placeAlarm(live.alarms[id]); });
      counts();
    }
    panel.querySelectorAll('input[name=kind]').forEach(function (box) { box.addEventListener('change', applyFilters); });
    $('select[name=company]').addEventListener('change', applyFilters);

    function companies() {
      var select = $('select[name=company]');
      var known = {};
      Object.keys(live.trackers).forEach(function (id) {
        var c = live.trackers[id].feature.properties.company;
        if (c) { known[c] = true; }
      });
      var chosen = select.value;
      select.innerHTML = '<option value="">全部单位</option>' + Object.keys(known).sort().map(function (c) {
        return '<option value="' + esc(c) + '"' + (c === chosen ? ' selected' : '') + '>' + esc(c) + '</option>';
      }).join('');
    }

    // --- trackers -----------------------------------------------------------------------
    function stateOf(p) {
      var age = Date.now() + live.skewMs - new Date(p.time).getTime();
      return age > live.offlineMinutes * 60e3 ? 'offline' : p.state;
    }
    function label(p) {
      if (p.subject === 'person') { return (p.name || p.username) + '（巡查员）'; }
      return (p.plate || p.terminal || '未知车辆') + '（' + (config.kinds[p.kind] || '未登记') + '）';
    }
    function popup(p, id) {
      var state = config.states[stateOf(p)];
      return '<div class="cg-popup"><h4>' + esc(label(p)) + '</h4><table>' +
        (p.company ? '<tr><th>所属单位</th><td>' + esc(p.company) + '</td></tr>' : '') +
        '<tr><th>状态</th><td>' + esc(state.label) + '</td></tr>' +
        '<tr><th>速度</th><td>' + esc(Math.round(p.speed || 0)) + ' km/h</td></tr>' +
        '<tr><th>定位时间</th><td>' + esc(shortTime(p.time)) + '</td></tr></table>' +
        '<button type="button" class="cg-popup-track" data-tracker="' + esc(id) + '">轨迹回放</button></div>';
    }
    function style(p) {
      var color = config.states[stateOf(p)].color;
      return { radius: 7, color: '#ffffff', weight: 2, fillColor: color, fillOpacity: 0.95 };
    }
    function personIcon(p) {
      var state = stateOf(p);
      return L.divIcon({
        className: 'cg-person cg-person-' + state, iconSize: [22, 22],
        html: '<span style="background:' + (state === 'offline' ? config.states.offline.color : PERSON_COLOR) + '">人</span>'
      });
    }
    function place(entry) {
      var p = entry.feature.properties;
      var group = p.subject === 'person' ? people : vehicles;
      var visible = passes(kindOf(p), p.company || null);
      if (visible && !group.hasLayer(entry.marker)) { group.addLayer(entry.marker); }
      if (!visible && group.hasLayer(entry.marker)) { group.removeLayer(entry.marker); }
    }
    function upsert(feature) {
      var id = String(feature.id);
      var p = feature.properties;
      var entry = live.trackers[id];
      if (!entry) {
        var marker = p.subject === 'person'
          ? L.marker(latLng(feature), { icon: personIcon(p), title: label(p) })
          : L.circleMarker(latLng(feature), style(p));
        entry = live.trackers[id] = { feature: feature, marker: marker };
        marker.bindPopup('');
        marker.on('popupopen', function () { marker.setPopupContent(popup(entry.feature.properties, id)); });
      } else {
        entry.feature = feature;
        entry.marker.setLatLng(latLng(feature));
      }
      restyle(entry);
      place(entry);
    }
    function restyle(entry) {
      var p = entry.feature.properties;
      if (p.subject === 'person') { entry.marker.setIcon(personIcon(p)); } else { entry.marker.setStyle(style(p)); }
    }
    function remove(id) {
      var entry = live.trackers[String(id)];
      if (!entry) { return; }
      vehicles.removeLayer(entry.marker);
      people.removeLayer(entry.marker);
      delete live.trackers[String(id)];
    }
    function counts() {
      var n = { moving: 0, stopped: 0, offline: 0, person: 0 };
      Object.keys(live.trackers).forEach(function (id) {
        var p = live.trackers[id].feature.properties;
        if (p.subject === 'person') { n.person += 1; } else { n[stateOf(p)] += 1; }
      });
      $('.cg-counts').innerHTML = ['moving', 'stopped', 'offline'].map(function (s) {
        return '<span style="color:' + config.states[s].color + '">' + esc(config.states[s].label) + ' ' + n[s] + '</span>';
      }).join(' ') + ' <span style="color:' + PERSON_COLOR + '">巡查员 ' + n.person + '</span>';
    }
    function trackerChoices() {
      var select = $('select[name=tracker]');
      var chosen = select.value;
      var ids = Object.keys(live.trackers).sort(function (a, b) {
        return label(live.trackers[a].feature.properties).localeCompare(label(live.trackers[b].feature.properties), 'zh-CN');
      });
      select.innerHTML = '<option value="">选择车辆或人员</option>' + ids.map(function (id) {
        return '<option value="' + esc(id) + '"' + (id === chosen ? ' selected' : '') + '>' +
          esc(label(live.trackers[id].feature.properties)) + '</option>';
      }).join('');
    }

    // --- alarms -------------------------------------------------------------------------
    function alarmText(p) {
      return (config.alarms[p.kind] || p.label || p.kind) + ' · ' + (p.plate || p.terminal || '未知车辆');
    }
    function placeAlarm(entry) {
      var p = entry.feature.properties;
      var visible = p.open && passes(p.vehicle_kind || UNREGISTERED, p.company || null);
      if (visible && !alarmMarkers.hasLayer(entry.marker)) { alarmMarkers.addLayer(entry.marker); }
      if (!visible && alarmMarkers.hasLayer(entry.marker)) { alarmMarkers.removeLayer(entry.marker); }
      entry.item.hidden = !passes(p.vehicle_kind || UNREGISTERED, p.company || null);
    }
    function upsertAlarm(feature, fresh) {
      var id = String(feature.id);
      var p = feature.properties;
      var entry = live.alarms[id];
      if (!entry) {
        var marker = L.circleMarker(latLng(feature), {
          radius: 11, color: config.alarmColor, weight: 3, fillColor: config.alarmColor, fillOpacity: 0.35,
          className: 'cg-alarm-marker'
        });
        var item = document.createElement('li');
        item.dataset.alarm = id;
        item.addEventListener('click', function () { map.setView(marker.getLatLng(), Math.max(map.getZoom(), 15)); });
        entry = live.alarms[id] = { feature: feature, marker: marker, item: item };
        var list = $('.cg-alarm-list');
        list.insertBefore(item, list.firstChild);
      }
      entry.feature = feature;
      entry.marker.setLatLng(latLng(feature));
      entry.marker.bindTooltip(alarmText(p));
      entry.item.className = p.open ? 'cg-alarm-open' : 'cg-alarm-ended';
      entry.item.innerHTML = '<b>' + esc(config.alarms[p.kind] || p.label || p.kind) + '</b> ' +
        esc(p.plate || p.terminal || '') + '<br><small>' + esc(shortTime(p.time)) +
        (p.open ? ' 持续中' : ' 已结束') + (p.case_id ? ' · 已生成案件' : '') + '</small>';
      placeAlarm(entry);
      if (fresh && p.open) {
        live.toasts += 1;
        toast.textContent = '新报警：' + alarmText(p);
        toast.className = 'cg-command-toast cg-shown';
        clearTimeout(live.toastTimer);
        live.toastTimer = setTimeout(function () { toast.className = 'cg-command-toast'; }, 8000);
      }
      var open = Object.keys(live.alarms).filter(function (a) { return live.alarms[a].feature.properties.open; });
      $('.cg-alarm-count').textContent = '（持续中 ' + open.length + '）';
    }

    // --- the stream ---------------------------------------------------------------------
    function reset() {
      Object.keys(live.trackers).forEach(remove);
      alarmMarkers.clearLayers();
      live.alarms = {};
      $('.cg-alarm-list').innerHTML = '';
    }
    function changed() {
      companies();
      trackerChoices();
      counts();
      live.rounds += 1;
    }
    var query = config.county ? '?county=' + encodeURIComponent(config.county) : '';
    var source = new EventSource('/tracking/live' + query);
    live.source = source;
    function connected(yes) {
      live.connected = yes;
      $('.cg-live-state').textContent = yes ? '● 实时' : '重新连接中…';
      $('.cg-live-state').className = 'cg-live-state' + (yes ? ' cg-on' : '');
    }
    source.addEventListener('hello', function (e) {
      var hello = JSON.parse(e.data);
      live.offlineMinutes = hello.offline_minutes;
      live.skewMs = new Date(hello.now).getTime() - Date.now();
      connected(true);
    });
    source.addEventListener('snapshot', function (e) {
      var doc = JSON.parse(e.data);
      reset();
      doc.positions.features.forEach(upsert);
      doc.alarms.features.slice().reverse().forEach(function (f) { upsertAlarm(f, false); });
      changed();
      live.snapshots = (live.snapshots || 0) + 1;
    });
    source.addEventListener('positions', function (e) {
      JSON.parse(e.data).features.forEach(upsert);
      changed();
    });
    source.addEventListener('gone', function (e) {
      JSON.parse(e.data).ids.forEach(remove);
      changed();
    });
    source.addEventListener('alarms', function (e) {
      JSON.parse(e.data).features.slice().reverse().forEach(function (f) { upsertAlarm(f, true); });
      changed();
    });
    source.onerror = function () {
      connected(false);
      if (source.readyState === EventSource.CLOSED) {  // refused (signed out): no more retries
        $('.cg-live-state').textContent = '连接已断开，请重新登录后刷新页面';
      }
    };
    window.addEventListener('pagehide', function () { source.close(); });
    // silence turns a tracker offline: no event says so, the clock does
    setInterval(function () {
      Object.keys(live.trackers).forEach(function (id) { restyle(live.trackers[id]); });
      counts();
    }, 30e3);

    // --- playback -----------------------------------------------------------------------
    var play = { points: [], times: [], index: 0, clock: 0, playing: false, done: false, frame: null, marker: null };
    CityGrid.playback = play;
    function status(text) { $('.cg-play-status').textContent = text; }
    function stop() {
      play.playing = false;
      if (play.frame) { cancelAnimationFrame(play.frame); play.frame = null; }
      $('.cg-play-toggle').textContent = '继续';
    }
    function positionAt(t) {
      while (play.index < play.times.length - 2 && play.times[play.index + 1] <= t) { play.index += 1; }
      var a = play.points[play.index], b = play.points[Math.min(play.index + 1, play.points.length - 1)];
      var t0 = play.times[play.index], t1 = play.times[Math.min(play.index + 1, play.times.length - 1)];
      var f = t1 > t0 ? Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) : 1;
      return L.latLng(a.lat + (b.lat - a.lat) * f, a.lng + (b.lng - a.lng) * f);
    }
    function step(last) {
      play.frame = requestAnimationFrame(function (now) {
        var speed = Number($('select[name=speed]').value);
        play.clock += (now - (last || now)) * speed;
        var end = play.times[play.times.length - 1];
        play.marker.setLatLng(positionAt(Math.min(play.clock, end)));
        status('回放 ' + shortTime(new Date(Math.min(play.clock, end)).toISOString()) + '（第 ' + (play.index + 1) + '/' + play.points.length + ' 点）');
        if (play.clock >= end) {
          play.done = true;
          stop();
          $('.cg-play-toggle').textContent = '重新播放';
          status('回放结束（共 ' + play.points.length + ' 个点）');
          return;
        }
        step(now);
      });
    }
    function start() {
      if (play.done) { play.clock = play.times[0]; play.index = 0; play.done = false; }
      play.playing = true;
      $('.cg-play-toggle').textContent = '暂停';
      step(null);
    }
    $('.cg-play-toggle').addEventListener('click', function () { if (play.playing) { stop(); } else { start(); } });
    function load(id) {
      var from = $('input[name=from]').value, to = $('input[name=to]').value;
      if (!id) { status('请先选择车辆或人员'); return; }
      stop();
      trackLayer.clearLayers();
      status('正在读取轨迹…');
      // the inputs hold the browser's local time: sent as instants, whatever the server's zone
      var since = new Date(from), until = new Date(to);
      if (isNaN(since) || isNaN(until)) { status('请填写完整的起止时间'); return; }
      CityGrid.api('GET', '/tracking/vehicles/' + encodeURIComponent(id) + '/track?from=' +
        encodeURIComponent(since.toISOString()) + '&to=' + encodeURIComponent(until.toISOString())).then(function (doc) {
        var shown = CityGrid.toDisplay(doc);
        if (!shown.geometry) {
          status('该时段内轨迹点不足两个（' + doc.properties.count + ' 个）');
          return;
        }
        play.points = shown.geometry.coordinates.map(function (c) { return L.latLng(c[1], c[0]); });
        play.times = doc.properties.times.map(function (t) { return new Date(t).getTime(); });
        play.index = 0;
        play.clock = play.times[0];
        play.done = false;
        var line = L.polyline(play.points, { color: '#f39c12', weight: 4, opacity: 0.9, className: 'cg-track-line' });
        trackLayer.addLayer(line);
        play.marker = L.circleMarker(play.points[0], { radius: 8, color: '#ffffff', weight: 2, fillColor: '#f39c12', fillOpacity: 1 });
        trackLayer.addLayer(play.marker);
        map.fitBounds(line.getBounds(), { maxZoom: 16, padding: [40, 40] });
        $('.cg-play-toggle').disabled = false;
        play.loaded = (play.loaded || 0) + 1;
        start();
      }).catch(function (error) { status(error.message); });
    }
    $('.cg-play-load').addEventListener('click', function () { load($('select[name=tracker]').value); });
    map.on('popupopen', function (e) {
      var button = e.popup.getElement().querySelector('.cg-popup-track');
      if (button) {
        button.addEventListener('click', function () {
          $('select[name=tracker]').value = button.dataset.tracker;
          map.closePopup();
          load(button.dataset.tracker);
        });
      }
    });
    CityGrid.commandReady = true;
  };
})();
