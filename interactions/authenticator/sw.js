// Nyckel Authenticator's service worker: keeps the app usable offline (the QR code mode needs no
// network), receives the Web Push sign-in requests (it keeps the request for the app, shows a
// notification, and tells any open window of the app), and sends Nyckel the new subscription when
// the push service changes it. A classic script (module service workers are not everywhere yet).
var CACHE = 'nyckel-authenticator-v2';
var SHELL = [
  '/authenticator/',
  '/authenticator/app.js',
  '/authenticator/strings.js',
  '/authenticator/device.js',
  '/authenticator/requests.js',
  '/authenticator/qr.js',
  '/authenticator/phone.js',
  '/authenticator/app.css',
  '/authenticator/manifest.webmanifest',
  '/authenticator/icon.svg',
  '/assets/nyckel.css',
];
// Scripts of other slices (the QR decoder, WebAuthn): kept for offline use when they are there, but
// one missing must not keep the service worker from installing.
var EXTRAS = ['/assets/jsqr.js', '/assets/simplewebauthn-browser.js'];

self.addEventListener('install', function (event) {
  event.waitUntil(
    caches
      .open(CACHE)
      .then(function (cache) {
        return cache.addAll(SHELL).then(function () {
          return Promise.all(
            EXTRAS.map(function (url) {
              return cache.add(url).catch(function () {});
            }),
          );
        });
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
  if (
    event.request.method !== 'GET' ||
    url.pathname.indexOf('/authenticator/api/') === 0 ||
    (SHELL.indexOf(url.pathname) < 0 && EXTRAS.indexOf(url.pathname) < 0)
  )
    return;
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

function readKey(key) {
  return openDb().then(function (db) {
    return new Promise(function (resolve, reject) {
      var get = db.transaction('kv', 'readonly').objectStore('kv').get(key);
      get.onsuccess = function () {
        resolve(get.result);
      };
      get.onerror = function () {
        reject(get.error);
      };
    });
  });
}

function b64url(buffer) {
  var bytes = new Uint8Array(buffer),
    text = '';
  for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromB64url(text) {
  var raw = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  var bytes = new Uint8Array(raw.length);
  for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

/** A new subscription with Nyckel's VAPID key: the old subscription's key where it is known, else the server's. */
function subscribeAgain(oldSubscription) {
  var known = oldSubscription && oldSubscription.options && oldSubscription.options.applicationServerKey;
  var key = known
    ? Promise.resolve(known)
    : fetch('/authenticator/api/config')
        .then(function (r) {
          return r.json();
        })
        .then(function (config) {
          return fromB64url(config.vapidPublicKey);
        });
  return key.then(function (applicationServerKey) {
    return self.registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey });
  });
}

/**
 * The push service replaced (or dropped) this phone's subscription: the new one (given by the event,
 * else made here) goes to Nyckel, signed with the device key like the app's own update, or push
 * sign-ins would silently stop reaching the phone. Resolves to the server's status (or null).
 */
function resubscribe(newSubscription, oldSubscription) {
  return Promise.all([readKey('device'), newSubscription ? Promise.resolve(newSubscription) : subscribeAgain(oldSubscription)]).then(function (both) {
    var device = both[0],
      json = both[1] && (both[1].toJSON ? both[1].toJSON() : both[1]);
    if (!device || !device.deviceId || !json || !json.endpoint) return null;
    var subscription = { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
    var time = Date.now();
    var message = 'nyckel-subscription-v1\n' + device.deviceId + '\n' + time + '\n' + subscription.endpoint;
    return self.crypto.subtle
      .sign({ name: 'ECDSA', hash: 'SHA-256' }, device.privateKey, new TextEncoder().encode(message))
      .then(function (signature) {
        return fetch('/authenticator/api/subscription', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ deviceId: device.deviceId, time: time, subscription: subscription, signature: b64url(signature) }),
        });
      })
      .then(function (response) {
        return response.status;
      });
  });
}

self.addEventListener('pushsubscriptionchange', function (event) {
  event.waitUntil(
    resubscribe(event.newSubscription, event.oldSubscription).catch(function () {
      // Offline or refused: the app sends its current subscription the next time it opens.
    }),
  );
});

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
        // The notification first: an open app shows the request once it is told, and then it is complete.
        return self.registration.showNotification(request.client, {
          body: request.browser + ' · ' + request.ip,
          tag: request.challengeId,
          requireInteraction: true,
          icon: '/authenticator/icon.svg',
          data: { url: '/authenticator/#requests' },
        });
      })
      .catch(function () {
        // Notifications not allowed: the open app is still told.
      })
      .then(function () {
        return self.clients.matchAll({ type: 'window' });
      })
      .then(function (windows) {
        windows.forEach(function (w) {
          w.postMessage({ type: 'request', request: request });
        });
      }),
  );
});

self.addEventListener('notificationclick', function (event) {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window' }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) if (windows[i].url.indexOf('/authenticator/') >= 0) return windows[i].focus();
      return self.clients.openWindow('/authenticator/#requests');
    }),
  );
});
