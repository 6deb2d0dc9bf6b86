// Nyckel Authenticator: the phone's side of push approval and of the offline QR code. This module
// starts the app: registration from a link, else the three screens (requests, QR code, moving to a
// new phone) behind a small navigation of links (#requests, #qr, #move).
import { isTrivialPin, load, refreshSubscription, register, subtle } from './device.js';
import { biometricSetup, moveSetup } from './phone.js';
import { qrScreen } from './qr.js';
import { checkRequests, renderRequest, status } from './requests.js';
import { t, translatePage } from './strings.js';

const $ = (id) => document.getElementById(id);
const SCREENS = ['requests', 'qr', 'move'];
let qr = null;

/** Shows the screen of the address's #fragment (the requests by default); `focus` moves to its heading. */
function showScreen(focus) {
  const wanted = location.hash.slice(1);
  const current = SCREENS.includes(wanted) ? wanted : 'requests';
  SCREENS.forEach((name) => {
    $('screen-' + name).hidden = name !== current;
    const link = $('tab-' + name);
    if (name === current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  });
  if (current !== 'qr' && qr) qr.leave();
  if (focus)
    $('screen-' + current)
      .querySelector('h2')
      .focus();
}

function showEnrol(token) {
  $('enrol').hidden = false;
  $('home').hidden = true;
  $('enrol-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const pin = $('enrol-pin').value;
    if (isTrivialPin(pin)) return status(t('pin_trivial'));
    if (pin !== $('enrol-pin2').value) return status(t('pin_mismatch'));
    $('enrol-submit').disabled = true;
    try {
      const body = await register(token, pin);
      history.replaceState(null, '', '/authenticator/');
      // A new phone works once confirmed on the computer: nothing to list before that.
      await start(true);
      status(t(body.moved ? 'moved' : 'registered', body.name));
    } catch (error) {
      $('enrol-submit').disabled = false;
      status(error.message === 'token_expired' ? t('token_expired') : error.message === 'trivial_pin' ? t('pin_trivial') : t('failed', error.message));
    }
  });
}

let started = false;
async function start(justRegistered) {
  const device = await load('device');
  if (!device) return status(t('not_registered'));
  $('enrol').hidden = true;
  $('home').hidden = false;
  $('device-name').textContent = t('device', device.name);
  if (started) return justRegistered ? undefined : checkRequests(device);
  started = true;
  showScreen(false);
  window.addEventListener('hashchange', () => showScreen(true));
  $('check').addEventListener('click', () => checkRequests(device));
  qr = qrScreen(device);
  biometricSetup(device);
  moveSetup(device);
  if (!justRegistered) refreshSubscription(device);
  if (navigator.serviceWorker) {
    navigator.serviceWorker.addEventListener('message', (event) => {
      if (event.data && event.data.type === 'request') renderRequest(device, event.data.request);
    });
  }
  return justRegistered ? undefined : checkRequests(device);
}

translatePage();
if ('serviceWorker' in navigator) navigator.serviceWorker.register('/authenticator/sw.js', { scope: '/authenticator/' }).catch(() => {});
const token = /[#&](?:enrol|transfer)=([A-Za-z0-9_-]+)/.exec(location.hash);
if (!subtle) status(t('failed', 'WebCrypto'));
else if (token) showEnrol(token[1]);
else start();
