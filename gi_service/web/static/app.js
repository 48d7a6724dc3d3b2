// gi-service signed-in pages: small progressive enhancements only; every page works without script.
(function () {
  'use strict';
  // Forms that change something for good ask first (data-confirm="question").
  document.addEventListener('submit', function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute('data-confirm');
    if (question && !window.confirm(question)) { event.preventDefault(); return; }
    // One press sends one request: a double tap on a phone must not submit twice.
    var button = form.querySelector('button[type=submit]');
    if (button && !form.hasAttribute('data-no-disable')) {
      if (form.getAttribute('data-sent')) { event.preventDefault(); return; }
      // Downloads keep the page: let the button be pressed again later.
      if (!/print-file$/.test(form.getAttribute('action') || '')) { form.setAttribute('data-sent', '1'); }
    }
  });
})();
// Signed out (no account bar): forget the inspector's pages kept for offline use (they name the account).
// Findings waiting on this device stay: they are sent only by the account that made them.
(function () {
  'use strict';
  if (!document.getElementById('who') && window.caches && window.caches.keys) {
    caches.keys().then(function (keys) {
      keys.filter(function (key) { return key.indexOf('gi-pages-') === 0; })
        .forEach(function (key) { caches.delete(key); });
    }).catch(function () { /* no cache storage: nothing kept */ });
  }
})();
// The menu slides sideways on a phone: bring the current page's entry into view.
(function () {
  'use strict';
  var nav = document.querySelector('nav.nav');
  var current = nav && nav.querySelector('a[aria-current=page]');
  if (!current || nav.scrollWidth <= nav.clientWidth) { return; }
  nav.scrollLeft = Math.max(0, current.offsetLeft - (nav.clientWidth - current.offsetWidth) / 2);
})();
