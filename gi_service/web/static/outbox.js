// gi-service: findings kept on this device until they are sent, and the service worker that opens the
// inspector's pages offline. A finding is stored in IndexedDB (its photos as Blobs) under its client_id,
// then sent through /app/findings/batch (the API's batch: re-sending the same client_id files nothing new)
// and its photos one by one with their client_photo_id. Each finding belongs to the account that made it:
// another account signed in on the same phone never sends it.
(function () {
  'use strict';
  var DB_NAME = 'gi-inspect';
  var STORE = 'outbox';
  var SESSION_URL = '/app/session.json';
  var BATCH_URL = '/app/findings/batch';
  var BATCH_SIZE = 50;

  var words = {};
  try { words = JSON.parse(document.getElementById('words').textContent); } catch (e) { words = {}; }
  function w(key, values) {
    var text = words[key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.split('{' + k + '}').join(String(values[k])); });
    return text;
  }

  // --- IndexedDB -----------------------------------------------------------------------------------
  function openDb() {
    return new Promise(function (resolve, reject) {
      var request = indexedDB.open(DB_NAME, 1);
      request.onupgradeneeded = function () { request.result.createObjectStore(STORE, { keyPath: 'client_id' }); };
      request.onsuccess = function () { resolve(request.result); };
      request.onerror = function () { reject(request.error); };
    });
  }
  function withStore(mode, action) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(STORE, mode);
        var request = action(tx.objectStore(STORE));
        tx.oncomplete = function () { db.close(); resolve(request ? request.result : undefined); };
        tx.onerror = tx.onabort = function () { db.close(); reject(tx.error); };
      });
    });
  }
  function put(item) { return withStore('readwrite', function (s) { return s.put(item); }); }
  function all() {
    return withStore('readonly', function (s) { return s.getAll(); }).then(function (items) {
      return (items || []).sort(function (a, b) { return a.created_at < b.created_at ? -1 : 1; });
    });
  }
  function remove(clientId) { return withStore('readwrite', function (s) { return s.delete(clientId); }); }

  // --- sending -------------------------------------------------------------------------------------
  function setStatus(text, kind) {
    var el = document.getElementById('outbox-status');
    if (el) { el.textContent = text || ''; el.className = 'small' + (kind ? ' ' + kind : ''); }
  }

  function json(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      return { ok: response.ok, status: response.status, body: body };
    });
  }

  function sendFindings(items, who) {
    var chunks = [];
    for (var i = 0; i < items.length; i += BATCH_SIZE) { chunks.push(items.slice(i, i + BATCH_SIZE)); }
    return chunks.reduce(function (previous, chunk) {
      return previous.then(function () {
        return fetch(BATCH_URL, {
          method: 'POST', credentials: 'same-origin',
          headers: { 'Content-Type': 'application/json', 'Accept': 'application/json', 'X-CSRF-Token': who.csrf_token },
          body: JSON.stringify({ findings: chunk.map(function (item) { return item.finding; }) })
        }).then(json).then(function (answer) {
          if (!answer.ok) { throw new Error(answer.body.message || String(answer.status)); }
          return Promise.all(answer.body.items.map(function (result, index) {
            var item = chunk[index];
            if (result.status === 'error') {
              item.state = 'failed';
              item.error = (result.error && result.error.message) || String(result.status_code);
              item.error_code = result.error && result.error.code;
            } else {
              item.finding_id = result.id;
              item.error = null;
            }
            return put(item);
          }));
        });
      });
    }, Promise.resolve());
  }

  function sendPhotos(item, who) {
    return item.photos.reduce(function (previous, photo) {
      return previous.then(function () {
        if (photo.sent || photo.error) { return null; }
        var form = new FormData();
        form.append('photo', photo.blob, photo.name || 'photo.jpg');
        form.append('client_photo_id', photo.client_photo_id);
        return fetch('/app/findings/' + item.finding_id + '/photos', {
          method: 'POST', credentials: 'same-origin',
          headers: { 'Accept': 'application/json', 'X-CSRF-Token': who.csrf_token }, body: form
        }).then(json).then(function (answer) {
          if (answer.ok) { photo.sent = true; } else if (answer.status >= 400 && answer.status < 500) {
            photo.error = answer.body.message || String(answer.status);
          } else { throw new Error(answer.body.message || String(answer.status)); }
          return put(item);
        });
      });
    }, Promise.resolve());
  }

  var sentLog = [];

  function doSync() {
    return all().then(function (items) {
      if (!items.length) { render(items, null); return { sent: [], offline: false }; }
      setStatus(w('js_sending'));
      return fetch(SESSION_URL, { credentials: 'same-origin', headers: { 'Accept': 'application/json' } })
        .then(json, function () { return null; })
        .then(function (session) {
          if (session === null) {  // no connection
            setStatus(w('js_saved_offline'));
            render(items, null);
            return { sent: [], offline: true };
          }
          if (!session.ok) {
            setStatus(w('js_sign_in_to_send'), 'error');
            render(items, null);
            return { sent: [], offline: false, signedOut: true };
          }
          var who = session.body;
          var mine = items.filter(function (item) { return owns(item, who); });
          var toFile = mine.filter(function (item) { return !item.finding_id && item.state !== 'failed'; });
          var sent = [];
          return sendFindings(toFile, who).then(function () {
            var withId = mine.filter(function (item) { return item.finding_id; });
            return withId.reduce(function (previous, item) {
              return previous.then(function () { return sendPhotos(item, who); }).then(function () {
                sent.push({ client_id: item.client_id, finding_id: item.finding_id,
                            photo_errors: item.photos.filter(function (p) { return p.error; }).map(function (p) { return p.name + ': ' + p.error; }) });
                return remove(item.client_id);
              });
            }, Promise.resolve());
          }).then(function () {
            sentLog = sentLog.concat(sent);
            return all().then(function (left) {
              render(left, who);
              if (sent.length) {
                setStatus(w('js_sent', { n: sent.length, ids: sent.map(function (s) { return '#' + s.finding_id; }).join(' ') }), 'ok');
              } else if (left.some(function (item) { return item.state === 'failed'; })) {
                setStatus(w('js_send_failed'), 'error');
              } else { setStatus(''); }
              return { sent: sent, offline: false, left: left };
            });
          }, function (error) {
            // The connection dropped half-way: what was sent is recorded on the items; the rest waits.
            return all().then(function (left) {
              render(left, who);
              setStatus(w('js_saved_offline') + (error && error.message ? ' (' + error.message + ')' : ''));
              return { sent: sent, offline: true, left: left };
            });
          });
        });
    });
  }

  var running = null;
  function sync() {
    if (running) { return running; }
    var go = function () { return doSync(); };
    var job = (navigator.locks && navigator.locks.request) ? navigator.locks.request('gi-outbox', go) : go();
    running = job.then(function (result) { running = null; return result; },
                       function (error) { running = null; setStatus(w('js_send_failed') + ' ' + error, 'error'); return { sent: [], error: error }; });
    return running;
  }

  function owns(item, who) {
    return who && item.owner && item.owner.user === who.user && item.owner.organisation_id === who.organisation_id;
  }

  // --- the list --------------------------------------------------------------------------------------
  function text(tag, content, className) {
    var el = document.createElement(tag);
    el.textContent = content;
    if (className) { el.className = className; }
    return el;
  }

  function render(items, who) {
    var section = document.getElementById('outbox');
    var list = document.getElementById('outbox-list');
    if (!section || !list) { return; }
    var count = document.getElementById('outbox-count');
    if (count) { count.textContent = String(items.length); }
    section.hidden = items.length === 0 && sentLog.length === 0;
    list.textContent = '';
    items.forEach(function (item) {
      var li = document.createElement('li');
      li.className = 'outbox-item ' + (item.state === 'failed' ? 'failed' : 'waiting');
      li.setAttribute('data-client-id', item.client_id);
      var f = item.finding;
      li.appendChild(text('h3', f.premises.name));
      var facts = [f.observed_at.replace('T', ' ').slice(0, 16), w('js_codes') + ' ' + f.codes.length,
                   w('js_photos') + ' ' + item.photos.length];
      li.appendChild(text('p', facts.join(' · '), 'small muted'));
      var state;
      if (item.state === 'failed') { state = text('p', w('js_failed_item') + ' ' + (item.error || ''), 'small error'); }
      else if (who && !owns(item, who)) { state = text('p', w('js_other_user', { user: item.owner.user }), 'small'); }
      else { state = text('p', item.finding_id ? w('js_waiting') + ' #' + item.finding_id : w('js_waiting'), 'small'); }
      li.appendChild(state);
      if (item.state === 'failed') {
        var del = text('button', w('js_delete'), 'small secondary');
        del.type = 'button';
        del.addEventListener('click', function () {
          if (window.confirm(w('js_delete_confirm'))) { remove(item.client_id).then(refresh); }
        });
        li.appendChild(del);
      }
      list.appendChild(li);
    });
    sentLog.forEach(function (s) {
      var li = document.createElement('li');
      li.className = 'outbox-item sent';
      var a = text('a', w('js_sent', { n: 1, ids: '#' + s.finding_id }));
      a.href = '/app/findings/' + s.finding_id;
      li.appendChild(a);
      if (s.photo_errors.length) { li.appendChild(text('p', w('js_photo_failed') + ' ' + s.photo_errors.join('; '), 'small error')); }
      list.appendChild(li);
    });
  }

  function refresh() { return all().then(function (items) { render(items, null); return items; }); }

  window.GIOutbox = { put: put, all: all, remove: remove, sync: sync, refresh: refresh, words: w, setStatus: setStatus };

  // --- wiring ----------------------------------------------------------------------------------------
  // Once the service worker controls this page, the scan and finding pages open offline: say so.
  function offlineReady() {
    if (navigator.onLine && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage('keep-pages');
    }
    document.documentElement.setAttribute('data-offline-ready', 'yes');
    var note = document.getElementById('offline-ready');
    if (note) { note.hidden = false; }
  }
  if ('serviceWorker' in navigator) {
    navigator.serviceWorker.register('/app/sw.js', { scope: '/app/' }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function () {
      if (navigator.serviceWorker.controller) { offlineReady(); }
      else { navigator.serviceWorker.addEventListener('controllerchange', offlineReady); }
    }).catch(function () { /* the pages still work online */ });
  }
  var send = document.getElementById('outbox-send');
  if (send) { send.addEventListener('click', function () { sync(); }); }
  window.addEventListener('online', function () { sync(); });
  refresh().then(function (items) { if (items.length && navigator.onLine) { sync(); } });
})();
