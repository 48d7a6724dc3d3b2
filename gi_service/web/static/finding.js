// gi-service: the finding form on a phone. The phone's location fills the point; the finding is kept on the
// device first (outbox.js) and sent at once when there is a connection, else when it returns.
// Without this script the form still posts as an ordinary multipart form.
(function () {
  'use strict';
  var form = document.getElementById('finding-form');
  if (!form || !window.GIOutbox) { return; }
  var w = window.GIOutbox.words;
  var meta = document.querySelector('meta[name=gi-user]');
  var owner = { user: meta.getAttribute('content'), organisation_id: Number(meta.getAttribute('data-organisation')) };
  var status = document.getElementById('finding-status');
  var locStatus = document.getElementById('location-status');

  function say(el, message, kind) { el.textContent = message || ''; el.className = 'small' + (kind ? ' ' + kind : ''); }

  function randomId() {
    if (window.crypto && crypto.randomUUID) { return crypto.randomUUID().replace(/-/g, ''); }
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }
  function newClientId() { form.elements.client_id.value = 'web-' + randomId(); }

  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function localInput(date) {
    return date.getFullYear() + '-' + pad(date.getMonth() + 1) + '-' + pad(date.getDate()) + 'T' +
      pad(date.getHours()) + ':' + pad(date.getMinutes());
  }
  // The observation time with the phone's own zone, e.g. 2026-05-01T10:30:00+08:00.
  function isoWithZone(value) {
    var date = value ? new Date(value) : new Date();
    if (isNaN(date.getTime())) { date = new Date(); }
    var offset = -date.getTimezoneOffset();
    var sign = offset >= 0 ? '+' : '-';
    offset = Math.abs(offset);
    return localInput(date) + ':' + pad(date.getSeconds()) + sign + pad(Math.floor(offset / 60)) + ':' + pad(offset % 60);
  }

  // --- codes from the scan page (?code=…) and a fresh client id: the page may come from the offline cache.
  var params = new URLSearchParams(location.search);
  var codes = params.getAll('code');
  if (codes.length) { form.elements.codes.value = codes.join('\n'); }
  newClientId();
  form.elements.observed_at.value = localInput(new Date());

  // --- e-commerce needs the shop's address on the web
  var kind = form.elements.premises_kind;
  var urlField = document.getElementById('url-field');
  function showUrl() {
    var online = kind.value === 'e_commerce';
    form.elements.premises_url.required = online;
    urlField.classList.toggle('required', online);
  }
  kind.addEventListener('change', showUrl);
  showUrl();

  // --- the phone's location
  function locate() {
    if (!navigator.geolocation) { say(locStatus, w('js_location_unsupported'), 'error'); return; }
    say(locStatus, w('js_location_getting'));
    navigator.geolocation.getCurrentPosition(function (position) {
      var c = position.coords;
      form.elements.lat.value = c.latitude.toFixed(6);
      form.elements.lon.value = c.longitude.toFixed(6);
      say(locStatus, w('js_location_ok', { accuracy: Math.round(c.accuracy || 0) }), 'ok');
    }, function (error) {
      say(locStatus, w('js_location_failed') + ' (' + (error && error.message || '') + ')', 'error');
    }, { enableHighAccuracy: true, timeout: 20000, maximumAge: 60000 });
  }
  document.getElementById('locate').addEventListener('click', locate);
  if (!form.elements.lat.value) { locate(); }

  // --- keep, then send
  function collect() {
    var f = form.elements;
    var premises = { name: f.premises_name.value.trim(), kind: f.premises_kind.value };
    if (f.premises_url.value.trim()) { premises.url = f.premises_url.value.trim(); }
    if (f.premises_address.value.trim()) { premises.address = f.premises_address.value.trim(); }
    if (f.premises_uscc.value.trim()) { premises.uscc = f.premises_uscc.value.trim().toUpperCase(); }
    var finding = {
      client_id: f.client_id.value,
      observed_at: isoWithZone(f.observed_at.value),
      lat: Number(f.lat.value), lon: Number(f.lon.value),
      premises: premises,
      codes: f.codes.value.split(/\r?\n/).map(function (c) { return c.trim(); }).filter(Boolean),
      violations: Array.prototype.filter.call(form.querySelectorAll('input[name=violations]'), function (box) {
        return box.checked; }).map(function (box) { return box.value; })
    };
    if (f.gi_id.value) { finding.gi_id = Number(f.gi_id.value); }
    if (f.notes.value.trim()) { finding.notes = f.notes.value.trim(); }
    var photos = Array.prototype.map.call(f.photos.files || [], function (file, i) {
      return { client_photo_id: finding.client_id.slice(0, 58) + '-p' + (i + 1), name: file.name, blob: file,
               sent: false, error: null };
    });
    return { client_id: finding.client_id, owner: owner, created_at: new Date().toISOString(), finding: finding,
             photos: photos, finding_id: null, state: 'waiting', error: null };
  }

  function reset() {
    var keep = { lat: form.elements.lat.value, lon: form.elements.lon.value, kind: kind.value,
                 name: form.elements.premises_name.value, address: form.elements.premises_address.value };
    form.reset();
    form.elements.lat.value = keep.lat;
    form.elements.lon.value = keep.lon;
    kind.value = keep.kind;
    form.elements.premises_name.value = keep.name;      // the next finding is usually in the same shop
    form.elements.premises_address.value = keep.address;
    form.elements.codes.value = '';
    form.elements.observed_at.value = localInput(new Date());
    newClientId();
    showUrl();
  }

  var button = document.getElementById('finding-submit');
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    event.stopImmediatePropagation();  // app.js must not mark the form as sent: it stays usable offline
    if (!form.elements.lat.value || !form.elements.lon.value) {
      say(status, w('js_no_location'), 'error');
      form.elements.lat.focus();
      return;
    }
    var item = collect();
    button.disabled = true;
    say(status, w('js_sending'));
    window.GIOutbox.put(item).then(function () { return window.GIOutbox.sync(); }).then(function (result) {
      var sent = (result && result.sent || []).filter(function (s) { return s.client_id === item.client_id; })[0];
      if (sent) {
        location.assign('/app/findings/' + sent.finding_id + '?sent=1');
        return;
      }
      return window.GIOutbox.all().then(function (items) {
        var kept = items.filter(function (i) { return i.client_id === item.client_id; })[0];
        if (kept && kept.state === 'failed' && !kept.finding_id) {
          // Refused by the service (nothing was written): correct the form and send it again.
          return window.GIOutbox.remove(item.client_id).then(window.GIOutbox.refresh).then(function () {
            say(status, w('js_send_failed') + ' ' + kept.error, 'error');
          });
        }
        say(status, w('js_saved_offline'), 'ok');
        reset();
      });
    }).catch(function (error) {
      say(status, w('js_send_failed') + ' ' + error, 'error');
    }).then(function () { button.disabled = false; });
  }, true);
})();
