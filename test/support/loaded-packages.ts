// Run as its own process by test/unit/lazy-packages.test.ts: imports the server's module graph (as
// `npm start` does, without starting it) and prints which optional packages (provider SDKs, the Redis
// client, the WebAuthn parsers, the common-password list) were loaded.
import { createRequire } from 'node:module';
import '../../src/nyckel.ts';

const require = createRequire(import.meta.url);
const loaded = Object.keys(require.cache);
const packages = [
  'nodemailer',
  '@sendgrid/mail',
  '@sendgrid/client',
  'web-push',
  'twilio',
  'ioredis',
  '@peculiar/asn1-schema',
  '@peculiar/x509',
  '@zxcvbn-ts/language-common',
  '@zxcvbn-ts/dictionary-compression',
];
console.log(JSON.stringify(packages.filter((name) => loaded.some((file) => file.includes(`/node_modules/${name}/`)))));
