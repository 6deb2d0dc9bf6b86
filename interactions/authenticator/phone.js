// Settings of this phone: fingerprint or face instead of the PIN (a WebAuthn platform credential),
// and moving the registration to a new phone (a QR code shown after the PIN).
import { pinProof, post, save, sign } from './device.js';
import { status } from './requests.js';
import { t } from './strings.js';

const $ = (id) => document.getElementById(id);
const refusal = (body) => (body.error === 'wrong_pin' ? t('wrong_pin', body.attemptsLeft) : t(body.error));

export async function biometricSetup(device) {
  if (device.biometric || !window.PublicKeyCredential || !window.SimpleWebAuthnBrowser) return;
  if (!(await PublicKeyCredential.isUserVerifyingPlatformAuthenticatorAvailable())) return;
  $('biometric').hidden = false;
  $('bio-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const time = Date.now();
    try {
      const proof = await pinProof(device, $('bio-pin').value, 'biometric', String(time));
      const signature = await sign(device, 'nyckel-biometric-setup-v1\n' + device.deviceId + '\n' + time + '\n' + proof);
      const response = await post('biometric/options', { deviceId: device.deviceId, time, pinProof: proof, signature });
      $('bio-pin').value = '';
      if (response.status !== 200) throw new Error(refusal(response.body));
      const setup = response.body;
      const credential = await window.SimpleWebAuthnBrowser.startRegistration({ optionsJSON: setup.options });
      const registered = await post('biometric', { setupId: setup.setupId, deviceId: device.deviceId, credential });
      if (registered.status !== 201) throw new Error(t(registered.body.error));
      device.biometric = { credentialId: credential.id, rpId: setup.options.rp.id };
      await save('device', device);
      $('biometric').hidden = true;
      status(t('bio_done'));
    } catch (e) {
      status(e.message);
    }
  });
}

export function moveSetup(device) {
  $('move-form').addEventListener('submit', async (event) => {
    event.preventDefault();
    const time = Date.now();
    try {
      const proof = await pinProof(device, $('move-pin').value, 'transfer', String(time));
      const signature = await sign(device, 'nyckel-transfer-v1\n' + device.deviceId + '\n' + time + '\n' + proof);
      const response = await post('transfer', { deviceId: device.deviceId, time, pinProof: proof, signature });
      $('move-pin').value = '';
      if (response.status !== 200) return status(refusal(response.body));
      status('');
      $('move-qr').src = response.body.qr;
      $('move-link').href = response.body.url;
      $('move-link').textContent = response.body.url;
      $('move-result').hidden = false;
    } catch (e) {
      status(t('failed', e.message));
    }
  });
}
