// The Requests screen: push sign-in requests (from the service worker or listed by a signed request),
// number matching, and the answer signed with the device key (PIN proof, or fingerprint or face).
import { b64url, digest, load, pinProof, post, sign } from './device.js';
import { t } from './strings.js';

const $ = (id) => document.getElementById(id);
const shown = {};

export function status(text) {
  $('status').textContent = text || '';
}

/** A result as a clear state: `ok` (approved, denied), `error` (wrong PIN, expired…), or none while working. */
function showResult(node, text, state) {
  const result = node.querySelector('.request-result');
  result.textContent = text;
  result.className = 'request-result' + (state === 'ok' ? ' notice' : state === 'error' ? ' alert' : '');
}

async function answer(device, request, node, chosen, decision, notMe, assertion) {
  const pin = node.querySelector('.request-pin').value;
  const fields = {
    challengeId: request.challengeId,
    deviceId: device.deviceId,
    decision,
    number: decision === 'approve' ? chosen : '',
    notMe,
    pinProof: decision === 'approve' && !assertion ? await pinProof(device, pin, 'approve', request.challengeId) : '',
  };
  const message = ['nyckel-approval-v1', fields.challengeId, fields.deviceId, fields.decision, fields.number, notMe ? 'not-me' : '', fields.pinProof].join(
    '\n',
  );
  if (assertion) fields.assertion = assertion;
  fields.signature = await sign(device, message);
  const response = await post('approve', fields);
  const error = response.body.error;
  if (response.status === 200) showResult(node, t(response.body.status === 'approved' ? 'approved' : 'denied'), 'ok');
  else showResult(node, error === 'wrong_pin' ? t('wrong_pin', response.body.attemptsLeft) : t(error) !== error ? t(error) : t('failed', error), 'error');
  if (response.status === 200 || error === 'wrong_number' || error === 'expired' || error === 'used') {
    node.classList.add('request-done');
    node.querySelectorAll('button, input').forEach((el) => {
      el.disabled = true;
    });
  } else node.querySelector('.request-pin').value = '';
}

function biometricAssertion(device, request, chosen) {
  // The challenge binds the assertion to this request, this phone and the number picked.
  return digest('nyckel-biometric-v1\n' + request.challengeId + '\n' + device.deviceId + '\n' + chosen).then((challenge) =>
    window.SimpleWebAuthnBrowser.startAuthentication({
      optionsJSON: {
        challenge: b64url(challenge),
        rpId: device.biometric.rpId,
        userVerification: 'required',
        timeout: 60000,
        allowCredentials: [{ id: device.biometric.credentialId, type: 'public-key', transports: ['internal'] }],
      },
    }),
  );
}

export function renderRequest(device, request) {
  if (shown[request.challengeId] || Date.parse(request.expiresAt) <= Date.now()) return;
  const node = $('request-template').content.firstElementChild.cloneNode(true);
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
  let chosen = null;
  const numbers = node.querySelector('.request-numbers');
  const picked = node.querySelector('.request-picked');
  request.numbers.forEach((number) => {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'number';
    button.textContent = number;
    button.setAttribute('data-number', number);
    button.setAttribute('aria-pressed', 'false');
    button.addEventListener('click', () => {
      chosen = number;
      numbers.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', String(b === button)));
      picked.textContent = t('picked', number);
      node.querySelector('.request-confirm').hidden = false;
      node.querySelector('.request-pin').focus();
    });
    numbers.appendChild(button);
  });
  const failed = (e) => showResult(node, t('failed', e.message), 'error');
  node.querySelector('.approve').addEventListener('click', () => {
    if (chosen) answer(device, request, node, chosen, 'approve', false).catch(failed);
  });
  const bio = node.querySelector('.approve-biometric');
  bio.textContent = t('approve_bio');
  if (!device.biometric || !window.SimpleWebAuthnBrowser) bio.remove();
  else {
    bio.hidden = false;
    bio.addEventListener('click', () => {
      if (!chosen) return;
      biometricAssertion(device, request, chosen)
        .then((assertion) => answer(device, request, node, chosen, 'approve', false, assertion))
        .catch(failed);
    });
  }
  node.querySelector('.deny').addEventListener('click', () => answer(device, request, node, chosen, 'deny', false).catch(failed));
  node.querySelector('.not-me').addEventListener('click', () => answer(device, request, node, chosen, 'deny', true).catch(failed));
  $('requests').appendChild(node);
}

export async function checkRequests(device) {
  const time = Date.now();
  let response;
  try {
    const signature = await sign(device, 'nyckel-pending-v1\n' + device.deviceId + '\n' + time);
    response = await post('pending', { deviceId: device.deviceId, time, signature });
  } catch {
    // Offline: the requests the service worker kept.
    ((await load('requests')) || []).forEach((r) => renderRequest(device, r));
    return;
  }
  if (response.status === 401) return status(t('not_registered'));
  (response.body.requests || []).forEach((r) => renderRequest(device, r));
  status($('requests').children.length ? '' : t('none'));
}
