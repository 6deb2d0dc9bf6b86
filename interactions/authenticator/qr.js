// The QR code screen (no network needed): the QR code of the sign-in page is scanned with the camera
// (the browser's BarcodeDetector where there is one, else jsQR on canvas frames: iOS Safari and
// Firefox have none) or its text pasted; the code is shown once the PIN is typed, as it is made with it.
import { offlineCode } from './device.js';
import { status } from './requests.js';
import { t } from './strings.js';

const $ = (id) => document.getElementById(id);
const QR_TEXT = /^nyckel-qr-v2:([A-Za-z0-9_-]{16,}):(.*)$/;
const JSQR = '/assets/jsqr.js';

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const script = document.createElement('script');
    script.src = src;
    script.onload = resolve;
    script.onerror = () => reject(new Error(src));
    document.head.appendChild(script);
  });
}

/** A function that reads a QR code from the video's current frame (its text, or null). */
async function qrReader() {
  if ('BarcodeDetector' in window) {
    try {
      if ((await window.BarcodeDetector.getSupportedFormats()).includes('qr_code')) {
        const detector = new window.BarcodeDetector({ formats: ['qr_code'] });
        return async (video) => {
          const codes = await detector.detect(video);
          return codes.length ? codes[0].rawValue : null;
        };
      }
    } catch {
      // No usable detector: the bundled decoder below.
    }
  }
  if (!window.jsQR) await loadScript(JSQR);
  const canvas = document.createElement('canvas');
  const context = canvas.getContext('2d', { willReadFrequently: true });
  return async (video) => {
    // A phone camera's full frame is large; a QR code on a screen is still readable at 640 px.
    const scale = Math.min(1, 640 / Math.max(video.videoWidth, video.videoHeight));
    const width = Math.round(video.videoWidth * scale);
    const height = Math.round(video.videoHeight * scale);
    if (!width || !height) return null;
    canvas.width = width;
    canvas.height = height;
    context.drawImage(video, 0, 0, width, height);
    const found = window.jsQR(context.getImageData(0, 0, width, height).data, width, height, { inversionAttempts: 'attemptBoth' });
    return found ? found.data : null;
  };
}

let stream = null;
function stopCamera() {
  if (stream) stream.getTracks().forEach((track) => track.stop());
  stream = null;
  $('qr-video').hidden = true;
  $('qr-stop').hidden = true;
  $('qr-scan').hidden = false;
}

/** The scanned or pasted text is taken; the PIN is asked for next. */
function scanned(text) {
  stopCamera();
  $('qr-text').value = text;
  $('qr-result').hidden = true;
  status(QR_TEXT.test(text.trim()) ? t('scanned') : t('bad_qr'));
  $('qr-pin').focus();
}

async function scan() {
  const video = $('qr-video');
  try {
    const read = await qrReader();
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: 'environment' }, audio: false });
    video.srcObject = stream;
    video.hidden = false;
    $('qr-scan').hidden = true;
    $('qr-stop').hidden = false;
    $('qr-stop').focus();
    status(t('scanning'));
    await video.play();
    const look = async () => {
      if (!stream) return;
      const text = await read(video).catch(() => null);
      if (text) scanned(text);
      else setTimeout(look, 200);
    };
    look();
  } catch {
    stopCamera();
    status(t('camera_failed'));
  }
}

async function showCode(device) {
  const text = $('qr-text').value.trim();
  const pin = $('qr-pin').value;
  const match = QR_TEXT.exec(text);
  $('qr-result').hidden = true;
  if (!match) return status(t('bad_qr'));
  if (!/^\d{4,12}$/.test(pin)) {
    status(t('qr_need_pin'));
    return $('qr-pin').focus();
  }
  const code = await offlineCode(device, text, pin);
  $('qr-pin').value = '';
  $('qr-client').textContent = t('code_for', match[2]);
  $('qr-code').textContent = code.slice(0, 4) + ' ' + code.slice(4);
  $('qr-result').hidden = false;
  status('');
}

export function qrScreen(device) {
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) {
    $('qr-scan').hidden = false;
    $('qr-scan').addEventListener('click', scan);
    $('qr-stop').addEventListener('click', stopCamera);
  }
  $('qr-text').addEventListener('input', () => {
    $('qr-result').hidden = true;
  });
  $('qr-form').addEventListener('submit', (event) => {
    event.preventDefault();
    showCode(device).catch((e) => status(t('failed', e.message)));
  });
  return { leave: stopCamera };
}
