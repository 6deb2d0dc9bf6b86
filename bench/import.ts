// `npm run bench:import -- [users] [postgres-url]`: writes a CSV of `users` (default 100,000) users with
// imported password hashes (bcrypt, PBKDF2, scrypt, Django and Keycloak, a few made once and repeated:
// the import reads a hash, it never verifies one) and a TOTP secret for every tenth, imports it with the
// code behind `nyckel users import` into a fresh database (in-memory PGlite, or the PostgreSQL URL
// given), then imports it again (all present). Prints the time of each run and the peak RSS.
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { hashSync as bcryptHash } from '@node-rs/bcrypt';
import { Accounts } from '../src/accounts/accounts.ts';
import { AuditLog } from '../src/accounts/audit.ts';
import { importUsers, streamImportFile } from '../src/accounts/import.ts';
import { base32Encode } from '../src/accounts/import-totp.ts';
import { sealTotpSecret } from '../src/factors/totp/index.ts';
import { newMasterKey, SecretBox } from '../src/security/crypto.ts';
import { openDatabase } from '../src/storage/db.ts';
import { applyMigrations } from '../src/storage/migrate.ts';

const count = Number(process.argv[2] ?? 100_000);
const postgresUrl = process.argv[3];
const password = 'the benchmark password';
// Addresses of this run only, so a PostgreSQL database used before starts from no such users.
const run = crypto.randomBytes(3).toString('hex');

function sampleHashes(): string[] {
  const salt = crypto.randomBytes(16);
  const ab64 = (bytes: Buffer) => bytes.toString('base64').replace(/=+$/, '').replace(/\+/g, '.');
  const keycloak = JSON.stringify({
    secretData: JSON.stringify({ value: crypto.pbkdf2Sync(password, salt, 27500, 64, 'sha256').toString('base64'), salt: salt.toString('base64') }),
    credentialData: JSON.stringify({ hashIterations: 27500, algorithm: 'pbkdf2-sha256' }),
  });
  return [
    bcryptHash(password, 10),
    `$pbkdf2-sha256$29000$${ab64(salt)}$${ab64(crypto.pbkdf2Sync(password, salt, 29000, 32, 'sha256'))}`,
    `$scrypt$ln=14,r=8,p=1$${salt.toString('base64').replace(/=+$/, '')}$${crypto
      .scryptSync(password, salt, 32, { N: 2 ** 14 })
      .toString('base64')
      .replace(/=+$/, '')}`,
    `pbkdf2_sha256$100000$benchsalt$${crypto.pbkdf2Sync(password, 'benchsalt', 100000, 32, 'sha256').toString('base64')}`,
    keycloak,
  ].map((hash) => `"${hash.replace(/"/g, '""')}"`); // PHC strings have commas, Keycloak's JSON quotes
}

function writeCsv(file: string) {
  const hashes = sampleHashes();
  const out = fs.openSync(file, 'w');
  fs.writeSync(out, 'email,name,email_verified,password_hash,totp_secret\n');
  for (let from = 0; from < count; from += 1000) {
    const lines = [];
    for (let i = from; i < Math.min(count, from + 1000); i++) {
      const totp = i % 10 === 0 ? base32Encode(crypto.randomBytes(20)) : '';
      lines.push(`user${i}-${run}@bench.example,User ${i},true,${hashes[i % hashes.length]},${totp}`);
    }
    fs.writeSync(out, `${lines.join('\n')}\n`);
  }
  fs.closeSync(out);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-bench-import-'));
const file = path.join(dir, 'users.csv');
writeCsv(file);
console.log(`${count} users, ${(fs.statSync(file).size / 1024 / 1024).toFixed(1)} MiB of CSV; database: ${postgresUrl ? 'PostgreSQL' : 'PGlite in memory'}`);

const db = await openDatabase(postgresUrl ? { kind: 'postgres', url: postgresUrl } : { kind: 'pglite-memory' });
try {
  await applyMigrations(db.adapterFactory);
  const audit = new AuditLog(db.prisma);
  const accounts = new Accounts(db.prisma, audit, { memoryCost: 19456, timeCost: 2 });
  const seal = sealTotpSecret(new SecretBox(Buffer.from(newMasterKey(), 'base64url')));
  const rss = () => process.memoryUsage().rss / 1024 / 1024;
  // Sampled, since the process's own peak (maxRSS) includes the migrations' schema engine.
  let peak = rss();
  const sampler = setInterval(() => (peak = Math.max(peak, rss())), 50);
  console.log(`RSS before the import ${rss().toFixed(0)} MiB (process peak so far, migrations: ${(process.resourceUsage().maxRSS / 1024).toFixed(0)} MiB)`);
  for (const pass of ['first', 'again']) {
    const started = performance.now();
    const report = await importUsers(db.prisma, accounts, audit, streamImportFile(file), { actor: 'bench', sealTotpSecret: seal });
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `${pass}: ${report.created} created, ${report.existing} present, ${report.invalid} bad in ${seconds.toFixed(1)} s (${Math.round(count / seconds)} rows/s)`,
    );
  }
  clearInterval(sampler);
  console.log(`peak RSS during the imports ${peak.toFixed(0)} MiB`);
} finally {
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
