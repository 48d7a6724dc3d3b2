// gi-service service worker (served as /app/sw.js, scope /app/): the inspector's scan and finding pages and
// the static files open without a connection. Pages are fetched from the network first (and the copy kept is
// refreshed), falling back to the kept copy offline; static files come from the cache and are refreshed behind.
// Nothing else is intercepted: every other page and every write goes to the network as usual. Findings made
// offline are kept by the page itself (outbox.js, IndexedDB), not here.
'use strict';
var VERSION = 'v1';
var STATIC_CACHE = 'gi-static-' + VERSION;
var PAGE_CACHE = 'gi-pages-' + VERSION;
var STATIC = ['/app/static/app.css', '/app/static/app.js', '/app/static/outbox.js', '/app/static/scan.js',
              '/app/static/finding.js', '/app/static/vendor/jsQR.js'];
var PAGES = ['/app/scan', '/app/findings/new'];

function keepPage(cache, path, response) {
  // Only a page really shown to a signed-in user (not a redirect to the sign-in page, not an error).
  if (response && response.ok && !response.redirected && response.type === 'basic') {
    return cache.put(path, response);
  }
  return null;
}

// The pages as the signed-in account sees them now (they carry its name and the GI list).
function keepPages() {
  return caches.open(PAGE_CACHE).then(function (cache) {
    return Promise.all(PAGES.map(function (path) {
      return fetch(path, { credentials: 'same-origin' }).then(function (response) {
        return keepPage(cache, path, response);
      }).catch(function () { return null; });
    }));
  });
}

self.addEventListener('install', function (event) {
  event.waitUntil(Promise.all([
    caches.open(STATIC_CACHE).then(function (cache) { return cache.addAll(STATIC); }),
    keepPages()
  ]).then(function () { return self.skipWaiting(); }));
});

// A page of the inspector asks for fresh copies when it opens online (after signing out they were dropped).
self.addEventListener('message', function (event) {
  if (event.data === 'keep-pages') { event.waitUntil(keepPages()); }
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (keys) {
    return Promise.all(keys.filter(function (key) {
      return key.indexOf('gi-') === 0 && key !== STATIC_CACHE && key !== PAGE_CACHE;
    }).map(function (key) { return caches.delete(key); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === 'navigate' && PAGES.indexOf(url.pathname) >= 0) {
    event.respondWith(fetch(request).then(function (response) {
      if (!url.search) {
        var copy = response.clone();
        caches.open(PAGE_CACHE).then(function (cache) { return keepPage(cache, url.pathname, copy); });
      }
      return response;
    }, function () {
      return caches.open(PAGE_CACHE).then(function (cache) { return cache.match(url.pathname); })
        .then(function (kept) { return kept || Response.error(); });
    }));
    return;
  }
  if (STATIC.indexOf(url.pathname) >= 0) {
    event.respondWith(caches.open(STATIC_CACHE).then(function (cache) {
      return cache.match(url.pathname).then(function (kept) {
        var fresh = fetch(request).then(function (response) {
          if (response.ok) { cache.put(url.pathname, response.clone()); }
          return response;
        });
        if (kept) { fresh.catch(function () { return null; }); return kept; }
        return fresh;
      });
    }));
  }
});
