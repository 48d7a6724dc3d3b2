// gi-service: scan labels with the phone's camera. The browser's BarcodeDetector reads the QR where there is
// one; otherwise the bundled jsQR decoder (static/vendor/jsQR.js) reads frames drawn on a canvas. Each new code
// is checked at once (/app/scan/check: the consumer page's verdict, not counted as a consumer check) and
// carried to the finding form. Without a connection the code is kept and verified when the finding is sent.
(function () {
  'use strict';
  var card = document.getElementById('camera');
  if (!card) { return; }
  var w = window.GIOutbox ? window.GIOutbox.words : function (k) { return k; };
  var lang = (document.documentElement.lang || 'zh').slice(0, 2) === 'en' ? 'en' : 'zh';
  var checkUrl = card.getAttribute('data-check-url');
  var findingUrl = card.getAttribute('data-finding-url');
  var video = document.getElementById('scan-video');
  var viewfinder = document.getElementById('viewfinder');
  var statusEl = document.getElementById('scan-status');
  var list = document.getElementById('scanned');
  var empty = document.getElementById('scanned-empty');
  var countEl = document.getElementById('scanned-count');
  var toFinding = document.getElementById('to-finding');
  var startButton = document.getElementById('scan-start');
  var stopButton = document.getElementById('scan-stop');
  var clearButton = document.getElementById('scan-clear');
  var KEY = 'gi-scanned';
  var canvas = document.createElement('canvas');
  var context = canvas.getContext('2d', { willReadFrequently: true });
  var stream = null;
  var detector = null;
  var busy = false;

  function say(message, kind) { statusEl.textContent = message; statusEl.className = 'small' + (kind ? ' ' + kind : ''); }

  // --- what was scanned (kept for this tab, so the finding form and a reload see it) ------------------
  var entries = [];
  try { entries = JSON.parse(sessionStorage.getItem(KEY) || '[]'); } catch (e) { entries = []; }
  Array.prototype.forEach.call(list.querySelectorAll('li.verdict'), function (li) {
    var read = li.querySelector('.read').textContent;
    if (!entries.some(function (e) { return e.read === read; })) { entries.push({ read: read, doc: null, shown: true }); }
    li.setAttribute('data-read', read);
  });
  function save() {
    sessionStorage.setItem(KEY, JSON.stringify(entries.map(function (e) { return { read: e.read, doc: e.doc }; })));
    countEl.textContent = String(entries.length);
    empty.hidden = entries.length > 0;
    clearButton.hidden = entries.length === 0;
    toFinding.href = findingUrl + (entries.length ? '?' + entries.map(function (e) {
      return 'code=' + encodeURIComponent(e.read); }).join('&') : '');
  }

  function el(tag, content, className) {
    var node = document.createElement(tag);
    if (content !== undefined && content !== null) { node.textContent = content; }
    if (className) { node.className = className; }
    return node;
  }

  // The same markup as templates/app/_verdict.html.
  function verdictItem(entry) {
    var doc = entry.doc;
    var li = el('li');
    li.setAttribute('data-read', entry.read);
    if (!doc) {
      li.className = 'verdict pending';
      li.appendChild(el('p', entry.offline ? w('js_offline_verdict') : (entry.error || w('js_checking')), 'v-title'));
      li.appendChild(el('p', entry.read, 'mono small muted read'));
      return li;
    }
    li.className = 'verdict ' + (doc.genuine ? 'ok' : 'bad') + ' v-' + doc.verdict;
    li.setAttribute('data-verdict', doc.verdict);
    li.appendChild(el('p', doc.title[lang], 'v-title'));
    li.appendChild(el('p', doc.message[lang]));
    if (doc.foreign_host) {
      var warn = el('p', w('js_not_ours') + ' ', 'warn');
      warn.appendChild(el('b', doc.foreign_host, 'mono'));
      li.appendChild(warn);
    }
    if (doc.suspect) {
      var s = el('p', ' ' + doc.suspect.message[lang], 'warn');
      s.insertBefore(el('b', doc.suspect.title[lang]), s.firstChild);
      li.appendChild(s);
    }
    var dl = el('dl', null, 'facts small');
    function fact(label, value, className) {
      if (!value) { return; }
      dl.appendChild(el('dt', label));
      dl.appendChild(el('dd', value, className));
    }
    fact(w('js_serial'), doc.serial_display, 'serial');
    fact(w('js_gi'), doc.gi && doc.gi.name_zh);
    fact(w('js_producer'), doc.producer && (doc.producer.name + ' ' + (doc.producer.uscc || '')));
    fact(w('js_lot'), doc.lot && (doc.lot.lot_no + ' · ' + doc.lot.production_date));
    if (doc.mark) {
      fact(w('js_state'), (doc.mark.state_label || doc.mark.state) +
           (doc.checks ? ' · ' + w('js_checks_count', { n: doc.checks.count }) : ''));
    }
    li.appendChild(dl);
    li.appendChild(el('p', entry.read, 'mono small muted read'));
    return li;
  }

  // The newest verdict also shows right under the camera, big enough to read at arm's length.
  var latest = document.getElementById('latest');
  var lastRead = null;
  function show(entry, asLatest) {
    var node = verdictItem(entry);
    var old = list.querySelector('li[data-read="' + CSS.escape(entry.read) + '"]');
    if (old) { list.replaceChild(node, old); } else { list.insertBefore(node, list.firstChild); }
    if (asLatest || entry.read === lastRead) {
      lastRead = entry.read;
      latest.textContent = '';
      latest.appendChild(verdictItem(entry));
    }
    return node;
  }

  function check(entry) {
    return fetch(checkUrl + '?code=' + encodeURIComponent(entry.read), {
      credentials: 'same-origin', headers: { 'Accept': 'application/json' }
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (body) {
        if (response.ok) { entry.doc = body; entry.offline = false; entry.error = null; }
        else { entry.error = body.message || String(response.status); }
      });
    }, function () { entry.offline = true; }).then(function () { save(); show(entry); });
  }

  function found(text) {
    text = (text || '').trim();
    if (!text) { return; }
    var known = entries.filter(function (e) { return e.read === text; })[0];
    if (known) {
      if (known.read !== lastRead) { show(known, true); say(w('js_already_scanned')); }
      return;
    }
    var entry = { read: text, doc: null };
    entries.push(entry);
    save();
    show(entry, true);
    if (navigator.vibrate) { navigator.vibrate(80); }
    say(w('js_checking'));
    check(entry).then(function () { if (stream) { say(w('js_camera_on')); } });
  }

  // Codes scanned earlier in this tab (not rendered by the server): show them again.
  entries.slice().reverse().forEach(function (entry) {
    if (entry.shown) { delete entry.shown; return; }
    show(entry);
  });
  entries.forEach(function (entry) { if (!entry.doc && navigator.onLine) { check(entry); } });
  save();

  // --- the camera --------------------------------------------------------------------------------------
  function decodeFrame() {
    if (detector) {
      return detector.detect(video).then(function (codes) { return codes.map(function (c) { return c.rawValue; }); });
    }
    var width = video.videoWidth, height = video.videoHeight;
    if (!width || !height || !window.jsQR) { return Promise.resolve([]); }
    var scale = Math.min(1, 800 / Math.max(width, height));
    canvas.width = Math.round(width * scale);
    canvas.height = Math.round(height * scale);
    context.drawImage(video, 0, 0, canvas.width, canvas.height);
    var image = context.getImageData(0, 0, canvas.width, canvas.height);
    var result = window.jsQR(image.data, canvas.width, canvas.height, { inversionAttempts: 'attemptBoth' });
    return Promise.resolve(result && result.data ? [result.data] : []);
  }

  function loop() {
    if (!stream) { return; }
    if (!busy && video.readyState >= 2) {
      busy = true;
      decodeFrame().then(function (texts) { texts.forEach(found); }, function () { /* a frame that cannot be read */ })
        .then(function () { busy = false; });
    }
    window.setTimeout(loop, 150);
  }

  function chooseDecoder() {
    if (!('BarcodeDetector' in window)) { return Promise.resolve(null); }
    return window.BarcodeDetector.getSupportedFormats().then(function (formats) {
      return formats.indexOf('qr_code') >= 0 ? new window.BarcodeDetector({ formats: ['qr_code'] }) : null;
    }, function () { return null; });
  }

  function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { say(w('js_camera_missing'), 'error'); return; }
    say(w('js_camera_starting'));
    chooseDecoder().then(function (d) {
      detector = d;
      return navigator.mediaDevices.getUserMedia({
        video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false });
    }).then(function (s) {
      stream = s;
      video.srcObject = s;
      viewfinder.hidden = false;
      startButton.hidden = true;
      stopButton.hidden = false;
      card.setAttribute('data-decoder', detector ? 'native' : 'jsqr');
      return video.play();
    }).then(function () {
      say(w('js_camera_on') + ' ' + (detector ? w('js_decoder_native') : w('js_decoder_bundled')), 'ok');
      loop();
    }).catch(function (error) {
      stop();
      say(error && error.name === 'NotAllowedError' ? w('js_camera_denied') : w('js_camera_missing') +
          (error && error.message ? ' (' + error.message + ')' : ''), 'error');
    });
  }

  function stop() {
    if (stream) { stream.getTracks().forEach(function (track) { track.stop(); }); }
    stream = null;
    video.srcObject = null;
    viewfinder.hidden = true;
    startButton.hidden = false;
    stopButton.hidden = true;
  }

  startButton.addEventListener('click', start);
  // The button is disabled in the page until this script has taken it: a tap before then would do nothing.
  startButton.disabled = false;
  stopButton.addEventListener('click', function () { stop(); say(w('js_camera_stopped')); });
  clearButton.addEventListener('click', function () {
    entries = [];
    list.textContent = '';
    latest.textContent = '';
    lastRead = null;
    save();
  });
  document.addEventListener('visibilitychange', function () { if (document.hidden) { stop(); } });

  // Typed codes are checked in place, without leaving the page.
  var manual = document.getElementById('manual-code');
  manual.addEventListener('submit', function (event) {
    event.preventDefault();
    event.stopImmediatePropagation();
    var input = manual.querySelector('input[name=code]:not([type=hidden])');
    found(input.value);
    input.value = '';
  }, true);
})();
