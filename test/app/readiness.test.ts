import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Koa from 'koa';
import { homeRoutes } from '../../src/server/home-routes.ts';
import type { PageRenderer } from '../../src/server/pages.ts';
import { startTestNyckel, type TestNyckel } from '../support/nyckel.ts';

let nyckel: TestNyckel;
beforeAll(async () => {
  nyckel = await startTestNyckel();
});
afterAll(() => nyckel?.stop());

describe('health and readiness', () => {
  test('/healthz says the process lives; /readyz that the database answers and every migration is applied', async () => {
    const live = await fetch(`${nyckel.url}/healthz`);
    expect(live.status).toBe(200);
    const ready = await fetch(`${nyckel.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(ready.headers.get('cache-control')).toBe('no-store');
    expect(await ready.json()).toEqual({ status: 'ok', database: 'ok', migrations: 'applied' });
  });

  test('a migration missing from the database makes /readyz answer 503 and name it', async () => {
    const [last] = await nyckel.db.prisma.$queryRawUnsafe<Array<{ id: string; migration_name: string }>>(
      'SELECT id, migration_name FROM _prisma_migrations ORDER BY migration_name DESC LIMIT 1',
    );
    await nyckel.db.prisma.$executeRawUnsafe('UPDATE _prisma_migrations SET rolled_back_at = now() WHERE id = $1', last.id);
    try {
      const ready = await fetch(`${nyckel.url}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'unavailable', database: 'ok', migrations: { pending: [last.migration_name] } });
    } finally {
      await nyckel.db.prisma.$executeRawUnsafe('UPDATE _prisma_migrations SET rolled_back_at = NULL WHERE id = $1', last.id);
    }
    expect((await fetch(`${nyckel.url}/readyz`)).status).toBe(200);
  });

  test('a database that does not answer makes /readyz answer 503 (and /healthz still 200)', async () => {
    const app = new Koa();
    app.use(homeRoutes({} as PageRenderer, () => Promise.reject(new Error('connection refused'))).routes());
    const handle = app.callback();
    const server = http.createServer((req, res) => void handle(req, res)).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(503);
      expect(await ready.json()).toEqual({ status: 'unavailable', database: 'unreachable', migrations: 'unknown' });
      expect((await fetch(`${base}/healthz`)).status).toBe(200);
    } finally {
      server.close();
    }
  });
});
