import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import QRCode from 'qrcode';

const WIDTH = 320;
const HEIGHT = 240;
const BLACK = 16;
const WHITE = 235;

/**
 * A fake camera for Chromium: `--use-file-for-fake-video-capture` plays a Y4M file (YUV4MPEG2, 4:2:0)
 * in a loop as the camera. `show` writes one grey frame of a QR code of `text` (or a blank frame):
 * Chromium opens the file when a page starts the camera, so a test can point the camera at a QR code
 * it learns only after the browser started.
 */
export class FakeCamera {
  readonly file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-camera-')), 'camera.y4m');

  constructor() {
    this.show(null);
  }

  /** The Chromium switches that make this file the camera (and allow it without asking). */
  get chromiumArgs(): string[] {
    return ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', `--use-file-for-fake-video-capture=${this.file}`];
  }

  show(text: string | null): void {
    const luma = Buffer.alloc(WIDTH * HEIGHT, WHITE);
    if (text !== null) {
      const { modules } = QRCode.create(text, { errorCorrectionLevel: 'M' });
      // Four modules of quiet zone on each side, as large as the frame allows.
      const scale = Math.floor(Math.min(WIDTH, HEIGHT) / (modules.size + 8));
      const left = Math.floor((WIDTH - modules.size * scale) / 2);
      const top = Math.floor((HEIGHT - modules.size * scale) / 2);
      for (let y = 0; y < modules.size * scale; y++)
        for (let x = 0; x < modules.size * scale; x++)
          if (modules.get(Math.floor(y / scale), Math.floor(x / scale))) luma[(top + y) * WIDTH + left + x] = BLACK;
    }
    const chroma = Buffer.alloc((WIDTH / 2) * (HEIGHT / 2) * 2, 128);
    const header = Buffer.from(`YUV4MPEG2 W${WIDTH} H${HEIGHT} F10:1 Ip A1:1 C420jpeg\n`);
    fs.writeFileSync(this.file, Buffer.concat([header, Buffer.from('FRAME\n'), luma, chroma]));
  }

  remove(): void {
    fs.rmSync(path.dirname(this.file), { recursive: true, force: true });
  }
}
