import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { newMasterKey } from '../../src/security/crypto.ts';
import { freePort, startServerProcess, type RunningServer } from '../support/process.ts';

/** Issue 13, section 6: in production /metrics is never open to anyone. */

const dataDirs: string[] = [];
const running: RunningServer[] = [];
afterAll(async () => {
  for (const server of running) await server.stop();
  for (const dir of dataDirs) fs.rmSync(dir, { recursive: true, force: true });
});

async function startProduction(env: Record<string, string>) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-prod-metrics-'));
  dataDirs.push(dataDir);
  const port = await freePort();
  const server = startServerProcess({
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    ISSUER: `http://localhost:${port}`,
    NYCKEL_DATA_DIR: dataDir,
    NYCKEL_MASTER_KEY: newMasterKey(),
    // Never reached: nothing is mailed here.
    NYCKEL_SMTP_URL: 'smtp://127.0.0.1:9',
    NYCKEL_LOG_LEVEL: 'info',
    ...env,
  });
  running.push(server);
  return { server, url: `http://127.0.0.1:${port}` };
}

describe('/metrics in production', () => {
  test('NYCKEL_METRICS=true without NYCKEL_METRICS_TOKEN: start-up refuses, saying what to set', async () => {
    const { server } = await startProduction({ NYCKEL_METRICS: 'true' });
    const code = await Promise.race([server.exited(), new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 20_000))]);
    expect(code).not.toBe('running');
    expect(code).not.toBe(0);
    expect(server.output()).toContain('NYCKEL_METRICS_TOKEN: required when NODE_ENV=production and NYCKEL_METRICS=true');
  }, 60_000);

  test('without a token /metrics is off (404); with one it answers only the bearer of the token', async () => {
    const open = await startProduction({});
    await open.server.waitFor(/Nyckel is listening/, 60_000);
    expect((await fetch(`${open.url}/metrics`)).status).toBe(404);

    const token = 'production-scrape-token-0123';
    const guarded = await startProduction({ NYCKEL_METRICS_TOKEN: token });
    await guarded.server.waitFor(/Nyckel is listening/, 60_000);
    expect((await fetch(`${guarded.url}/metrics`)).status).toBe(401);
    const scraped = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${token}` } });
    expect(scraped.status).toBe(200);
    expect(await scraped.text()).toContain('nyckel_logins_total');
  }, 150_000);
});
