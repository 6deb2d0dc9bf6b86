// The phone's keys and the wire protocol (the strings match src/factors/push/protocol.ts byte for byte).
// Keys: an ECDSA P-256 device key made here by WebCrypto, not extractable, kept in IndexedDB; the
// QR secret from the server, imported as a non-extractable HMAC key. The PIN is never stored: each
// approval carries HMAC(PBKDF2(PIN, salt), request), which only the server can check (and counts),
// and is signed with the device key. The offline QR code mixes in the same PIN proof, so a phone
// without its PIN shows only wrong codes, and a PIN cannot be tested on the phone.
export const subtle = window.crypto && window.crypto.subtle;
const enc = new TextEncoder();
const API = '/authenticator/api/';

// --- IndexedDB (one key-value store, shared with sw.js; CryptoKeys are stored as they are, still not extractable) ---
function db() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open('nyckel-authenticator', 1);
    request.onupgradeneeded = () => request.result.createObjectStore('kv');
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}
async function kv(mode, fn) {
  const d = await db();
  return new Promise((resolve, reject) => {
    const tx = d.transaction('kv', mode);
    const result = fn(tx.objectStore('kv'));
    tx.oncomplete = () => resolve(result && 'result' in result ? result.result : undefined);
    tx.onerror = () => reject(tx.error);
  });
}
export const load = (key) => kv('readonly', (s) => s.get(key));
export const save = (key, value) => kv('readwrite', (s) => void s.put(value, key));

// --- Encoding ---
export function b64url(buffer) {
  const bytes = new Uint8Array(buffer);
  let text = '';
  for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}
export function fromB64url(text) {
  const raw = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}
export const digest = (text) => subtle.digest('SHA-256', enc.encode(text));

/** Fewer than 4 digits, all the same digit, or a run up or down (1234, 9876, 0123…): refused here as by the server. */
export function isTrivialPin(pin) {
  if (!/^\d{4,12}$/.test(pin)) return true;
  const steps = [];
  for (let i = 1; i < pin.length; i++) steps.push((Number(pin[i]) - Number(pin[i - 1]) + 10) % 10);
  return [0, 1, 9].some((s) => steps.every((x) => x === s));
}

// --- The protocol ---
export async function sign(device, message) {
  return b64url(await subtle.sign({ name: 'ECDSA', hash: 'SHA-256' }, device.privateKey, enc.encode(message)));
}

export async function pinProof(device, pin, purpose, value) {
  const base = await subtle.importKey('raw', enc.encode(pin), 'PBKDF2', false, ['deriveBits']);
  const bits = await subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: fromB64url(device.pinSalt), iterations: 20000 }, base, 256);
  const key = await subtle.importKey('raw', bits, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return b64url(await subtle.sign('HMAC', key, enc.encode('nyckel-pin-v1\n' + purpose + '\n' + value)));
}

/** The offline code: RFC 4226 truncation of HMAC(QR secret, QR text + "\n" + PIN proof of the text), 8 digits. */
export async function offlineCode(device, text, pin) {
  const proof = await pinProof(device, pin, 'qr', text);
  const mac = new Uint8Array(await subtle.sign('HMAC', device.qrKey, enc.encode(text + '\n' + proof)));
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = ((mac[offset] & 0x7f) << 24) | (mac[offset + 1] << 16) | (mac[offset + 2] << 8) | mac[offset + 3];
  return String(binary % 100000000).padStart(8, '0');
}

export async function post(path, body) {
  const response = await fetch(API + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: await response.json() };
}

// --- Web Push subscription (optional: without it the app lists requests when opened) ---
export async function subscribe() {
  if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return null;
  try {
    if ((await Notification.requestPermission()) !== 'granted') return null;
    const [registration, config] = await Promise.all([navigator.serviceWorker.ready, fetch(API + 'config').then((r) => r.json())]);
    const sub = await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: fromB64url(config.vapidPublicKey) });
    const json = sub.toJSON();
    return { endpoint: json.endpoint, keys: { p256dh: json.keys.p256dh, auth: json.keys.auth } };
  } catch {
    return null;
  }
}

/** When notifications are allowed: the current subscription to the server (a new one, or after the push service dropped it). */
export async function refreshSubscription(device) {
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  try {
    const subscription = await subscribe();
    if (!subscription) return;
    const time = Date.now();
    const signature = await sign(device, 'nyckel-subscription-v1\n' + device.deviceId + '\n' + time + '\n' + subscription.endpoint);
    await post('subscription', { deviceId: device.deviceId, time, subscription, signature });
  } catch {
    // Offline or refused: the next opening tries again.
  }
}

/** Registration with the token of the account page's QR code (or of the old phone when moving); the name was asked there. */
export async function register(token, pin) {
  const device = { pinSalt: b64url(window.crypto.getRandomValues(new Uint8Array(16))) };
  const keys = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign', 'verify']);
  device.privateKey = keys.privateKey;
  const jwk = await subtle.exportKey('jwk', keys.publicKey);
  const subscription = await subscribe();
  const result = await post('devices', {
    token,
    publicKey: { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y },
    subscription,
    pin,
    pinSalt: device.pinSalt,
  });
  if (result.status !== 201) throw new Error(result.body.error || String(result.status));
  device.deviceId = result.body.deviceId;
  device.name = result.body.name;
  device.qrKey = await subtle.importKey('raw', fromB64url(result.body.qrSecret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  await save('device', device);
  return result.body;
}
