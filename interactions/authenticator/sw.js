// Nyckel Authenticator's service worker: keeps the app usable offline (the QR code mode needs no
// network) and receives the Web Push sign-in requests: it keeps the request for the app, shows a
// notification, and tells any open window of the app.
var CACHE = 'nyckel-authenticator-v1';
var SHELL = ['/authenticator/', '/authenticator/app.js', '/authenticator/manifest.webmanifest', '/authenticator/icon.svg', '/assets/nyckel.css'];

self.addEventListener('install', function (event) {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(function (cache) {
        return cache.addAll(SHELL);
      })
      .then(function () {
        return self.skipWaiting();
      }),
  );
});

self.addEventListener('activate', function (event) {
  event.waitUntil(
    caches
      .keys()
      .then(function (names) {
        return Promise.all(
          names
            .filter(function (n) {
              return n !== CACHE;
            })
            .map(function (n) {
              return caches.delete(n);
            }),
        );
      })
      .then(function () {
        return self.clients.claim();
      }),
  );
});

// The API always goes to the network; the app itself: network first, the cache when offline.
self.addEventListener('fetch', function (event) {
  var url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.pathname.indexOf('/authenticator/api/') === 0 || SHELL.indexOf(url.pathname) < 0) return;
  event.respondWith(
    fetch(event.request)
      .then(function (response) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) {
          cache.put(event.request, copy);
        });
        return response;
      })
      .catch(function () {
        return caches.match(event.request);
      }),
  );
});

function openDb() {
  return new Promise(function (resolve, reject) {
    var request = indexedDB.open('nyckel-authenticator', 1);
    request.onupgradeneeded = function () {
      request.result.createObjectStore('kv');
    };
    request.onsuccess = function () {
      resolve(request.result);
    };
    request.onerror = function () {
      reject(request.error);
    };
  });
}

function keepRequest(request) {
  return openDb().then(function (db) {
    return new Promise(function (resolve) {
      var tx = db.transaction('kv', 'readwrite');
      var store = tx.objectStore('kv');
      var get = store.get('requests');
      get.onsuccess = function () {
        var list = (get.result || []).filter(function (r) {
          return r.challengeId !== request.challengeId && Date.parse(r.expiresAt) > Date.now();
        });
        list.push(request);
        store.put(list, 'requests');
      };
      tx.oncomplete = function () {
        resolve();
      };
      tx.onerror = function () {
        resolve();
      };
    });
  });
}

self.addEventListener('push', function (event) {
  var request;
  try {
    request = event.data ? event.data.json() : null;
  } catch (e) {
    request = null;
  }
  if (!request || request.type !== 'approval') return;
  event.waitUntil(
    keepRequest(request)
      .then(function () {
        return self.clients.matchAll({ type: 'window' });
      })
      .then(function (windows) {
        windows.forEach(function (w) {
          w.postMessage({ type: 'request', request: request });
        });
        return self.registration.showNotification(request.client, {
          body: request.browser + ' · ' + request.ip,
          tag: request.challengeId,
          requireInteraction: true,
          icon: '/authenticator/icon.svg',
          data: { url: '/authenticator/' },
        });
      }),
  );
});

self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window' }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) if (windows[i].url.indexOf('/authenticator/') >= 0) return windows[i].focus();
      return self.clients.openWindow('/authenticator/');
    }),
  );
});
