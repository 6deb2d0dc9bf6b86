import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

/** 32 random bytes in base64url: the master key format. */
export function newMasterKey(): string {
  return crypto.randomBytes(32).toString('base64url');
}

/**
 * The master key encrypts secrets at rest (signing keys, cookie keys, factor secrets). In production it
 * comes from NYCKEL_MASTER_KEY; elsewhere it is generated once into the data directory (mode 0600).
 */
export function resolveMasterKey(settings: { masterKey?: string; dataDir: string; production: boolean }): Buffer {
  if (settings.masterKey) return Buffer.from(settings.masterKey, 'base64url');
  if (settings.production) throw new Error('NYCKEL_MASTER_KEY is required in production');
  const file = path.join(settings.dataDir, 'master.key');
  fs.mkdirSync(settings.dataDir, { recursive: true, mode: 0o700 });
  try {
    fs.writeFileSync(file, newMasterKey(), { flag: 'wx', mode: 0o600 });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const key = Buffer.from(fs.readFileSync(file, 'utf8').trim(), 'base64url');
  if (key.length !== 32) throw new Error(`${file} does not hold a 32-byte base64url key`);
  return key;
}

const VERSION = 1;

/** AES-256-GCM with a purpose-specific subkey; `context` is bound as associated data (e.g. a row id). */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();

  constructor(private readonly masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error('master key must be 32 bytes');
  }

  private subkey(purpose: string): Buffer {
    let key = this.keys.get(purpose);
    if (!key) {
      key = Buffer.from(crypto.hkdfSync('sha256', this.masterKey, Buffer.alloc(0), `nyckel:${purpose}`, 32));
      this.keys.set(purpose, key);
    }
    return key;
  }

  seal(purpose: string, plaintext: Buffer | string, context = ''): Uint8Array<ArrayBuffer> {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv('aes-256-gcm', this.subkey(purpose), iv);
    cipher.setAAD(Buffer.from(context));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return new Uint8Array(Buffer.concat([Buffer.from([VERSION]), iv, cipher.getAuthTag(), body]));
  }

  open(purpose: string, sealed: Uint8Array, context = ''): Buffer {
    const data = Buffer.from(sealed);
    if (data[0] !== VERSION || data.length < 29) throw new Error('unknown secret format');
    const decipher = crypto.createDecipheriv('aes-256-gcm', this.subkey(purpose), data.subarray(1, 13));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(data.subarray(13, 29));
    return Buffer.concat([decipher.update(data.subarray(29)), decipher.final()]);
  }

  /** A keyed MAC for tokens such as CSRF tokens. */
  mac(purpose: string, value: string): string {
    return crypto.createHmac('sha256', this.subkey(purpose)).update(value).digest('base64url');
  }
}

/** Constant-time string comparison (lengths are compared through fixed-size digests). */
export function safeEqual(a: string, b: string): boolean {
  const da = crypto.createHash('sha256').update(a).digest();
  const db = crypto.createHash('sha256').update(b).digest();
  return crypto.timingSafeEqual(da, db) && a.length === b.length;
}

export function randomToken(bytes = 32): string {
  return crypto.randomBytes(bytes).toString('base64url');
}
