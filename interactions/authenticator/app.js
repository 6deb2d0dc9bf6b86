// Nyckel Authenticator: the phone's side of push approval and of the offline QR code.
// Keys: an ECDSA P-256 device key made here by WebCrypto, not extractable, kept in IndexedDB; the
// QR secret from the server, imported as a non-extractable HMAC key. The PIN is never stored: each
// approval carries HMAC(PBKDF2(PIN, salt), request), which only the server can check (and counts),
// and is signed with the device key. The protocol strings match src/factors/push/protocol.ts.
(function () {
  'use strict';
  var STRINGS = {
    en: {
      title: 'Nyckel Authenticator',
      enrol_title: 'Register this phone',
      name: 'Name of this phone',
      pin_new: 'Choose a PIN (at least 4 digits)',
      pin_again: 'The PIN again',
      register: 'Register',
      requests: 'Sign-in requests',
      check: 'Check for requests',
      qr_title: 'Sign in with a QR code (no network needed)',
      qr_intro: 'Scan the QR code on the sign-in page, or paste its text, and type the code shown here on the computer.',
      scan: 'Scan a QR code',
      paste: 'QR code text',
      show_code: 'Show code',
      move_title: 'Move to a new phone',
      pin: 'PIN',
      move: 'Show QR code for the new phone',
      move_scan: 'Scan this with the new phone. This phone stops working once the new one is registered.',
      pin_trivial: 'Choose a PIN of at least 4 digits that is not a simple series (like 1234 or 0000).',
      pin_mismatch: 'The two PINs differ.',
      registered: 'This phone is registered as “%s”. Finish on the computer.',
      moved: 'This phone now replaces “%s”.',
      failed: 'That did not work (%s). Try again.',
      token_expired: 'The QR code has expired or was already used. Start again on the computer.',
      none: 'No sign-in requests right now.',
      pick: 'Pick the number shown on the sign-in page:',
      enter_pin: 'Your PIN',
      approve: 'Approve',
      deny: 'Deny',
      not_me: 'Deny – this was not me',
      approved: 'Approved. The sign-in continues on the computer.',
      denied: 'Denied.',
      wrong_pin: 'Wrong PIN. %s attempt(s) left.',
      locked: 'Too many wrong PINs. Try again later.',
      wrong_number: 'Wrong number: the request was ended. Start again on the computer.',
      expired: 'The request has expired.',
      used: 'The request was already answered.',
      not_registered: 'This phone is not registered. Open the link from “Add a mobile device” on your account page.',
      device: 'This phone: %s',
      bad_qr: 'That is not a Nyckel sign-in QR code.',
      code_for: 'Code for %s:',
      no_push: 'Notifications are off: open this app to see requests.',
      bio_title: 'Fingerprint or face',
      bio_enable: 'Use fingerprint or face instead of the PIN',
      bio_done: 'Fingerprint or face is set up.',
      approve_bio: 'Approve with fingerprint or face',
      biometric_failed: 'Fingerprint or face was not recognised.',
    },
    sv: {
      title: 'Nyckel Authenticator',
      enrol_title: 'Registrera den här telefonen',
      name: 'Telefonens namn',
      pin_new: 'Välj en PIN-kod (minst 4 siffror)',
      pin_again: 'PIN-koden igen',
      register: 'Registrera',
      requests: 'Inloggningsbegäranden',
      check: 'Sök efter begäranden',
      qr_title: 'Logga in med QR-kod (inget nätverk behövs)',
      qr_intro: 'Skanna QR-koden på inloggningssidan, eller klistra in dess text, och skriv koden som visas här på datorn.',
      scan: 'Skanna QR-kod',
      paste: 'QR-kodens text',
      show_code: 'Visa kod',
      move_title: 'Flytta till en ny telefon',
      pin: 'PIN-kod',
      move: 'Visa QR-kod för den nya telefonen',
      move_scan: 'Skanna den med den nya telefonen. Den här telefonen slutar fungera när den nya är registrerad.',
      pin_trivial: 'Välj en PIN-kod med minst 4 siffror som inte är en enkel serie (som 1234 eller 0000).',
      pin_mismatch: 'PIN-koderna är olika.',
      registered: 'Telefonen är registrerad som ”%s”. Slutför på datorn.',
      moved: 'Den här telefonen ersätter nu ”%s”.',
      failed: 'Det gick inte (%s). Försök igen.',
      token_expired: 'QR-koden har gått ut eller redan använts. Börja om på datorn.',
      none: 'Inga inloggningsbegäranden just nu.',
      pick: 'Välj numret som visas på inloggningssidan:',
      enter_pin: 'Din PIN-kod',
      approve: 'Godkänn',
      deny: 'Neka',
      not_me: 'Neka – det var inte jag',
      approved: 'Godkänt. Inloggningen fortsätter på datorn.',
      denied: 'Nekat.',
      wrong_pin: 'Fel PIN-kod. %s försök kvar.',
      locked: 'För många fel PIN-koder. Försök igen senare.',
      wrong_number: 'Fel nummer: begäran avslutades. Börja om på datorn.',
      expired: 'Begäran har gått ut.',
      used: 'Begäran är redan besvarad.',
      not_registered: 'Telefonen är inte registrerad. Öppna länken från ”Lägg till en mobil enhet” på kontosidan.',
      device: 'Den här telefonen: %s',
      bad_qr: 'Det är ingen QR-kod för inloggning i Nyckel.',
      code_for: 'Kod för %s:',
      no_push: 'Aviseringar är avstängda: öppna appen för att se begäranden.',
      bio_title: 'Fingeravtryck eller ansikte',
      bio_enable: 'Använd fingeravtryck eller ansikte i stället för PIN-kod',
      bio_done: 'Fingeravtryck eller ansikte är inställt.',
      approve_bio: 'Godkänn med fingeravtryck eller ansikte',
      biometric_failed: 'Fingeravtryck eller ansikte kändes inte igen.',
    },
    da: {
      title: 'Nyckel Authenticator',
      enrol_title: 'Registrér denne telefon',
      name: 'Telefonens navn',
      pin_new: 'Vælg en pinkode (mindst 4 cifre)',
      pin_again: 'Pinkoden igen',
      register: 'Registrér',
      requests: 'Login-anmodninger',
      check: 'Søg efter anmodninger',
      qr_title: 'Log ind med QR-kode (intet netværk nødvendigt)',
      qr_intro: 'Scan QR-koden på login-siden, eller indsæt dens tekst, og indtast koden, der vises her, på computeren.',
      scan: 'Scan QR-kode',
      paste: 'QR-kodens tekst',
      show_code: 'Vis kode',
      move_title: 'Flyt til en ny telefon',
      pin: 'Pinkode',
      move: 'Vis QR-kode til den nye telefon',
      move_scan: 'Scan den med den nye telefon. Denne telefon holder op med at virke, når den nye er registreret.',
      pin_trivial: 'Vælg en pinkode på mindst 4 cifre, som ikke er en simpel serie (som 1234 eller 0000).',
      pin_mismatch: 'De to pinkoder er forskellige.',
      registered: 'Telefonen er registreret som ”%s”. Afslut på computeren.',
      moved: 'Denne telefon erstatter nu ”%s”.',
      failed: 'Det lykkedes ikke (%s). Prøv igen.',
      token_expired: 'QR-koden er udløbet eller allerede brugt. Start forfra på computeren.',
      none: 'Ingen login-anmodninger lige nu.',
      pick: 'Vælg det nummer, der vises på login-siden:',
      enter_pin: 'Din pinkode',
      approve: 'Godkend',
      deny: 'Afvis',
      not_me: 'Afvis – det var ikke mig',
      approved: 'Godkendt. Login fortsætter på computeren.',
      denied: 'Afvist.',
      wrong_pin: 'Forkert pinkode. %s forsøg tilbage.',
      locked: 'For mange forkerte pinkoder. Prøv igen senere.',
      wrong_number: 'Forkert nummer: anmodningen blev afsluttet. Start forfra på computeren.',
      expired: 'Anmodningen er udløbet.',
      used: 'Anmodningen er allerede besvaret.',
      not_registered: 'Telefonen er ikke registreret. Åbn linket fra ”Tilføj en mobilenhed” på kontosiden.',
      device: 'Denne telefon: %s',
      bad_qr: 'Det er ikke en QR-kode til login i Nyckel.',
      code_for: 'Kode til %s:',
      no_push: 'Notifikationer er slået fra: åbn appen for at se anmodninger.',
      bio_title: 'Fingeraftryk eller ansigt',
      bio_enable: 'Brug fingeraftryk eller ansigt i stedet for pinkode',
      bio_done: 'Fingeraftryk eller ansigt er sat op.',
      approve_bio: 'Godkend med fingeraftryk eller ansigt',
      biometric_failed: 'Fingeraftryk eller ansigt blev ikke genkendt.',
    },
  };
  var lang = (navigator.language || 'en').slice(0, 2);
  var S = STRINGS[lang] || STRINGS.en;
  document.documentElement.lang = STRINGS[lang] ? lang : 'en';
  function t(key, value) {
    return (S[key] || STRINGS.en[key] || key).replace('%s', value === undefined ? '' : String(value));
  }
  function $(id) {
    return document.getElementById(id);
  }
  Array.prototype.forEach.call(document.querySelectorAll('[data-t]'), function (el) {
    el.textContent = t(el.getAttribute('data-t'));
  });

  var subtle = window.crypto && window.crypto.subtle;
  var enc = new TextEncoder();
  var API = '/authenticator/api/';

  function status(text) {
    $('status').textContent = text || '';
  }

  // --- IndexedDB (one key-value store; CryptoKeys are stored as they are, still not extractable) ---
  function db() {
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
  function kv(mode, fn) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var tx = d.transaction('kv', mode);
        var result = fn(tx.objectStore('kv'));
        tx.oncomplete = function () {
          resolve(result && 'result' in result ? result.result : undefined);
        };
        tx.onerror = function () {
          reject(tx.error);
        };
      });
    });
  }
  function load(key) {
    return kv('readonly', function (s) {
      return s.get(key);
    });
  }
  function save(key, value) {
    return kv('readwrite', function (s) {
      s.put(value, key);
    });
  }

  // --- Encoding and the protocol ---
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
  function isTrivialPin(pin) {
    if (!/^\d{4,12}$/.test(pin)) return true;
    var steps = [];
    for (var i = 1; i < pin.length; i++) steps.push((Number(pin[i]) - Number(pin[i - 1]) + 10) % 10);
    return [0, 1, 9].some(function (s) {
      return steps.every(function (x) {
        return x === s;
      });
    });
  }
  function sign(device, message) {
    return subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, device.privateKey, enc.encode(message)).then(b64url);
  }
  function pinProof(device, pin, purpose, value) {
    return subtle
      .importKey('raw', enc.encode(pin), 'PBKDF2', false, ['deriveBits'])
      .then(function (base) {
        return subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: fromB64url(device.pinSalt), iterations: 20000 }, base, 256);
      })
      .then(function (bits) {
        return subtle.importKey('raw', bits, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
      })
      .then(function (key) {
        return subtle.sign('HMAC', key, enc.encode('nyckel-pin-v1\n' + purpose + '\n' + value));
      })
      .then(b64url);
  }
  function post(path, body) {
    return fetch(API + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(function (response) {
      return response.json().then(function (json) {
        return { status: response.status, body: json };
      });
    });
  }

  // --- Web Push subscription (optional: without it the app lists requests when opened) ---
  function subscribe() {
    if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return Promise.resolve(null);
    return Notification.requestPermission()
      .then(function (permission) {
        if (permission !== 'granted') return null;
        return Promise.all([
          navigator.serviceWorker.ready,
          fetch(API + 'config').then(function (r) {
            return r.json();
          }),
        ])
          .then(function (both) {
            return both[0].pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromB64url(both[1].vapidPublicKey) });
          })
          .then(function (sub) {
            var json = sub.toJSON();
            return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
          });
      })
      .catch(function () {
        return null;
      });
  }

  /** When notifications are allowed: the current subscription to the server (a new one, or after the push service dropped it). */
  function refreshSubscription(device) {
    if (!('Notification' in window) || Notification.permission !== 'granted') return;
    subscribe()
      .then(function (subscription) {
        if (!subscription) return;
        var time = Date.now();
        return sign(device, 'nyckel-subscription-v1\n' + device.deviceId + '\n' + time + '\n' + subscription.endpoint).then(function (signature) {
          return post('subscription', { deviceId: device.deviceId, time: time, subscription: subscription, signature: signature });
        });
      })
      .catch(function () {});
  }

  // --- Registration (from the link of the account page's QR code, or a transfer from the old phone) ---
  function register(token, name, pin) {
    var device = { pinSalt: b64url(window.crypto.getRandomValues(new Uint8Array(16))) };
    return subtle
      .generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify'])
      .then(function (keys) {
        device.privateKey = keys.privateKey;
        return subtle.exportKey('jwk', keys.publicKey);
      })
      .then(function (jwk) {
        return subscribe().then(function (subscription) {
          return post('devices', {
            token: token,
            name: name || undefined,
            publicKey: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
            subscription: subscription,
            pin: pin,
            pinSalt: device.pinSalt,
          });
        });
      })
      .then(function (result) {
        if (result.status !== 201) throw new Error(result.body.error || String(result.status));
        device.deviceId = result.body.deviceId;
        device.name = result.body.name;
        return subtle
          .importKey('raw', fromB64url(result.body.qrSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign'])
          .then(function (qrKey) {
            device.qrKey = qrKey;
            return save('device', device);
          })
          .then(function () {
            return result.body;
          });
      });
  }

  function showEnrol(token) {
    $('enrol').hidden = false;
    $('home').hidden = true;
    $('enrol-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var pin = $('enrol-pin').value;
      if (isTrivialPin(pin)) return status(t('pin_trivial'));
      if (pin !== $('enrol-pin2').value) return status(t('pin_mismatch'));
      $('enrol-submit').disabled = true;
      register(token, $('enrol-name').value.trim(), pin)
        .then(function (body) {
          history.replaceState(null, '', '/authenticator/');
          // A new phone works once confirmed on the computer: nothing to list before that.
          return start(true).then(function () {
            status(t(body.moved ? 'moved' : 'registered', body.name));
          });
        })
        .catch(function (error) {
          $('enrol-submit').disabled = false;
          status(error.message === 'token_expired' ? t('token_expired') : error.message === 'trivial_pin' ? t('pin_trivial') : t('failed', error.message));
        });
    });
  }

  // --- Requests ---
  var shown = {};
  function renderRequest(device, request) {
    if (shown[request.challengeId] || Date.parse(request.expiresAt) <= Date.now()) return;
    var node = $('request-template').content.firstElementChild.cloneNode(true);
    shown[request.challengeId] = node;
    node.id = 'request-' + request.challengeId;
    node.querySelector('.request-client').textContent = request.client;
    node.querySelector('.request-details').textContent = new Date(request.time).toLocaleString() + ' · ' + request.browser + ' · ' + request.ip;
    node.querySelector('.request-pick').textContent = t('pick');
    node.querySelector('.request-pin-label').textContent = t('enter_pin');
    node.querySelector('.request-pin-label').htmlFor = 'pin-' + request.challengeId;
    node.querySelector('.request-pin').id = 'pin-' + request.challengeId;
    node.querySelector('.approve').textContent = t('approve');
    node.querySelector('.deny').textContent = t('deny');
    node.querySelector('.not-me').textContent = t('not_me');
    var chosen = null;
    var numbers = node.querySelector('.request-numbers');
    request.numbers.forEach(function (number) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'number';
      button.textContent = number;
      button.setAttribute('data-number', number);
      button.setAttribute('aria-pressed', 'false');
      button.addEventListener('click', function () {
        chosen = number;
        Array.prototype.forEach.call(numbers.children, function (b) {
          b.setAttribute('aria-pressed', String(b === button));
        });
        node.querySelector('.request-confirm').hidden = false;
        node.querySelector('.request-pin').focus();
      });
      numbers.appendChild(button);
    });
    var result = node.querySelector('.request-result');
    function answer(decision, notMe, assertion) {
      var pin = node.querySelector('.request-pin').value;
      var proof = decision === 'approve' && !assertion ? pinProof(device, pin, 'approve', request.challengeId) : Promise.resolve('');
      return proof
        .then(function (p) {
          var fields = {
            challengeId: request.challengeId,
            deviceId: device.deviceId,
            decision: decision,
            number: decision === 'approve' ? chosen : '',
            notMe: notMe,
            pinProof: p,
          };
          var message = [
            'nyckel-approval-v1',
            fields.challengeId,
            fields.deviceId,
            fields.decision,
            fields.number,
            notMe ? 'not-me' : '',
            fields.pinProof,
          ].join('\n');
          if (assertion) fields.assertion = assertion;
          return sign(device, message).then(function (signature) {
            fields.signature = signature;
            return post('approve', fields);
          });
        })
        .then(function (response) {
          var error = response.body.error;
          if (response.status === 200) result.textContent = t(response.body.status === 'approved' ? 'approved' : 'denied');
          else result.textContent = error === 'wrong_pin' ? t('wrong_pin', response.body.attemptsLeft) : t(error) !== error ? t(error) : t('failed', error);
          if (response.status === 200 || error === 'wrong_number' || error === 'expired' || error === 'used') {
            Array.prototype.forEach.call(node.querySelectorAll('button, input'), function (el) {
              el.disabled = true;
            });
          }
        })
        .catch(function (e) {
          result.textContent = t('failed', e.message);
        });
    }
    node.querySelector('.approve').addEventListener('click', function () {
      if (chosen) answer('approve', false);
    });
    var bio = node.querySelector('.approve-biometric');
    bio.textContent = t('approve_bio');
    if (!device.biometric || !window.SimpleWebAuthnBrowser) bio.parentNode.removeChild(bio);
    else {
      bio.hidden = false;
      bio.addEventListener('click', function () {
        if (!chosen) return;
        // The challenge binds the assertion to this request, this phone and the number picked.
        subtle
          .digest('SHA-256', enc.encode('nyckel-biometric-v1\n' + request.challengeId + '\n' + device.deviceId + '\n' + chosen))
          .then(function (digest) {
            return window.SimpleWebAuthnBrowser.startAuthentication({
              optionsJSON: {
                challenge: b64url(digest),
                rpId: device.biometric.rpId,
                userVerification: 'required',
                timeout: 60000,
                allowCredentials: [{ id: device.biometric.credentialId, type: 'public-key', transports: ['internal'] }],
              },
            });
          })
          .then(function (assertion) {
            return answer('approve', false, assertion);
          })
          .catch(function (e) {
            result.textContent = t('failed', e.message);
          });
      });
    }
    node.querySelector('.deny').addEventListener('click', function () {
      answer('deny', false);
    });
    node.querySelector('.not-me').addEventListener('click', function () {
      answer('deny', true);
    });
    $('requests').appendChild(node);
  }

  function checkRequests(device) {
    var time = Date.now();
    return sign(device, 'nyckel-pending-v1\n' + device.deviceId + '\n' + time)
      .then(function (signature) {
        return post('pending', { deviceId: device.deviceId, time: time, signature: signature });
      })
      .then(function (response) {
        if (response.status === 401) return status(t('not_registered'));
        var requests = response.body.requests || [];
        requests.forEach(function (r) {
          renderRequest(device, r);
        });
        if (!$('requests').children.length) status(t('none'));
        else status('');
      })
      .catch(function () {
        // Offline: the requests the service worker kept.
        return load('requests').then(function (list) {
          (list || []).forEach(function (r) {
            renderRequest(device, r);
          });
        });
      });
  }

  // --- QR code (offline) ---
  function qrCode(device, text) {
    return subtle.sign('HMAC', device.qrKey, enc.encode(text)).then(function (buffer) {
      var mac = new Uint8Array(buffer);
      var offset = mac[mac.length - 1] & 0x0f;
      var binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
      return String(binary % 100000000).padStart(8, '0');
    });
  }
  function showCode(device, text) {
    text = text.trim();
    var match = /^nyckel-qr-v1:([A-Za-z0-9_-]{16,}):(.*)$/.exec(text);
    if (!match) return status(t('bad_qr'));
    return qrCode(device, text).then(function (code) {
      $('qr-client').textContent = t('code_for', match[2]);
      $('qr-code').textContent = code.slice(0, 4) + ' ' + code.slice(4);
      $('qr-result').hidden = false;
      status('');
    });
  }
  function scanner(device) {
    if (!('BarcodeDetector' in window) || !navigator.mediaDevices) return;
    $('qr-scan').hidden = false;
    $('qr-scan').addEventListener('click', function () {
      var video = $('qr-video');
      var detector = new window.BarcodeDetector({ formats: ['qr_code'] });
      navigator.mediaDevices
        .getUserMedia({ video: { facingMode: 'environment' } })
        .then(function (stream) {
          video.srcObject = stream;
          video.hidden = false;
          video.play();
          function stop() {
            stream.getTracks().forEach(function (track) {
              track.stop();
            });
            video.hidden = true;
          }
          function look() {
            detector
              .detect(video)
              .then(function (codes) {
                if (codes.length) {
                  stop();
                  $('qr-text').value = codes[0].rawValue;
                  showCode(device, codes[0].rawValue);
                } else setTimeout(look, 250);
              })
              .catch(function () {
                setTimeout(look, 500);
              });
          }
          look();
        })
        .catch(function (e) {
          status(t('failed', e.message));
        });
    });
  }

  // --- Fingerprint or face instead of the PIN (a WebAuthn platform credential) ---
  function biometric(device) {
    if (device.biometric || !window.PublicKeyCredential || !window.SimpleWebAuthnBrowser) return;
    PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable().then(function (available) {
      if (!available) return;
      $('biometric').hidden = false;
      $('bio-form').addEventListener('submit', function (event) {
        event.preventDefault();
        var time = Date.now();
        var setup;
        pinProof(device, $('bio-pin').value, 'biometric', String(time))
          .then(function (proof) {
            return sign(device, 'nyckel-biometric-setup-v1\n' + device.deviceId + '\n' + time + '\n' + proof).then(function (signature) {
              return post('biometric/options', { deviceId: device.deviceId, time: time, pinProof: proof, signature: signature });
            });
          })
          .then(function (response) {
            if (response.status !== 200)
              throw new Error(response.body.error === 'wrong_pin' ? t('wrong_pin', response.body.attemptsLeft) : t(response.body.error));
            setup = response.body;
            return window.SimpleWebAuthnBrowser.startRegistration({ optionsJSON: setup.options });
          })
          .then(function (credential) {
            return post('biometric', { setupId: setup.setupId, deviceId: device.deviceId, credential: credential }).then(function (response) {
              if (response.status !== 201) throw new Error(t(response.body.error));
              device.biometric = { credentialId: credential.id, rpId: setup.options.rp.id };
              return save('device', device);
            });
          })
          .then(function () {
            $('biometric').hidden = true;
            status(t('bio_done'));
          })
          .catch(function (e) {
            status(e.message);
          });
      });
    });
  }

  // --- Moving to a new phone ---
  function move(device) {
    $('move-form').addEventListener('submit', function (event) {
      event.preventDefault();
      var time = Date.now();
      pinProof(device, $('move-pin').value, 'transfer', String(time))
        .then(function (proof) {
          return sign(device, 'nyckel-transfer-v1\n' + device.deviceId + '\n' + time + '\n' + proof).then(function (signature) {
            return post('transfer', { deviceId: device.deviceId, time: time, pinProof: proof, signature: signature });
          });
        })
        .then(function (response) {
          if (response.status !== 200) return status(response.body.error === 'wrong_pin' ? t('wrong_pin', response.body.attemptsLeft) : t(response.body.error));
          $('move-qr').src = response.body.qr;
          $('move-link').href = response.body.url;
          $('move-link').textContent = response.body.url;
          $('move-result').hidden = false;
        });
    });
  }

  var started = false;
  function start(justRegistered) {
    return load('device').then(function (device) {
      if (!device) return status(t('not_registered'));
      $('enrol').hidden = true;
      $('home').hidden = false;
      $('device-name').textContent = t('device', device.name);
      if (started) return justRegistered ? undefined : checkRequests(device);
      started = true;
      $('check').addEventListener('click', function () {
        checkRequests(device);
      });
      $('qr-show').addEventListener('click', function () {
        showCode(device, $('qr-text').value);
      });
      scanner(device);
      biometric(device);
      if (!justRegistered) refreshSubscription(device);
      move(device);
      if (navigator.serviceWorker) {
        navigator.serviceWorker.addEventListener('message', function (event) {
          if (event.data && event.data.type === 'request') renderRequest(device, event.data.request);
        });
      }
      return justRegistered ? undefined : checkRequests(device);
    });
  }

  if ('serviceWorker' in navigator) navigator.serviceWorker.register('/authenticator/sw.js', { scope: '/authenticator/' }).catch(function () {});
  if (!subtle) return status(t('failed', 'WebCrypto'));
  var token = /[#&](?:enrol|transfer)=([A-Za-z0-9_-]+)/.exec(location.hash);
  if (token) showEnrol(token[1]);
  else start();
})();
