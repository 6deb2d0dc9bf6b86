import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, test } from '@jest/globals';
import YAML from 'yaml';
import { settingsSchema } from '../../src/config/settings.ts';
import { MAX_WAIT_SECONDS } from '../../src/web/shared/long-poll.ts';

// The container files cannot be built on these machines (no registry for images), so they are kept
// correct by reading them: what they copy exists, what they set is a known setting, and the shape is
// the one the README promises (multi-stage, non-root, no dev dependencies, two nodes behind a balancer).
const root = path.resolve(import.meta.dirname, '../..');
const read = (file: string) => fs.readFileSync(path.join(root, file), 'utf8');
const dockerfile = read('docker/Dockerfile');
const compose = YAML.parse(read('docker/compose.yaml'), { merge: true }) as {
  services: Record<
    string,
    {
      build?: { context: string; dockerfile: string };
      environment?: Record<string, string>;
      ports?: string[];
      volumes?: string[];
      healthcheck?: unknown;
      depends_on?: unknown;
    }
  >;
};

const stages = dockerfile.split(/^FROM /m).slice(1);

describe('docker/Dockerfile', () => {
  test('two stages; the image runs as a non-root user with production dependencies only', () => {
    expect(stages).toHaveLength(2);
    const runtime = stages[1];
    expect(runtime).toMatch(/npm ci --omit=dev/);
    expect(runtime).toMatch(/^USER node$/m);
    // Node 24 LTS, and the built server (npm run build in the first stage), not the sources through tsx.
    expect(stages.every((stage) => stage.startsWith('node:24-bookworm-slim '))).toBe(true);
    expect(stages[0]).toMatch(/^RUN npm run build$/m);
    expect(runtime).toMatch(/^COPY --from=build \/app\/dist \.\/dist$/m);
    expect(runtime).toMatch(/^CMD \["node", "--max-semi-space-size=8", "bin\/launch.js"\]$/m);
    // npm run start:prod starts it the same way (and bench/footprint.ts measures it so).
    expect((JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts['start:prod']).toBe('node --max-semi-space-size=8 bin/launch.js');
    expect(runtime).toMatch(/^HEALTHCHECK [\s\S]*\/readyz/m);
    // Migrations are applied by Nyckel at start: no Prisma CLI migrate anywhere.
    expect(dockerfile).not.toMatch(/prisma\s+migrate/);
  });

  test('everything it copies from the repository exists and is not excluded by .dockerignore', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    const sources = [...dockerfile.matchAll(/^COPY (?!--from)(.+) (\S+)$/gm)].flatMap((m) => m[1].split(/\s+/));
    expect(sources.length).toBeGreaterThan(5);
    for (const source of sources) {
      expect(fs.existsSync(path.join(root, source))).toBe(true);
      expect(ignored.some((pattern) => source === pattern || source.startsWith(`${pattern}/`))).toBe(false);
    }
  });

  test('what it sets in the environment are known settings', () => {
    const env = [...dockerfile.matchAll(/^\s*(?:ENV )?([A-Z_]+)=\S+ ?\\?$/gm)].map((m) => m[1]);
    expect(env).toEqual(expect.arrayContaining(['NODE_ENV', 'NYCKEL_DATA_DIR', 'NYCKEL_CLIENTS']));
    for (const name of env) expect(Object.keys(settingsSchema.in.shape)).toContain(name);
  });
});

describe('docker/compose.yaml', () => {
  test('two Nyckel nodes from the same image and settings, one PostgreSQL, one Redis, a mail catcher and a balancer', () => {
    const { services } = compose;
    expect(Object.keys(services).sort()).toEqual(['balancer', 'mail', 'nyckel-a', 'nyckel-b', 'postgres', 'redis']);
    expect(services['nyckel-a']).toEqual(services['nyckel-b']);
    expect(services['nyckel-a'].build).toEqual({ context: '..', dockerfile: 'docker/Dockerfile' });
    expect(services.postgres.healthcheck).toBeDefined();
    expect(services.redis.healthcheck).toBeDefined();
    expect(services['nyckel-a'].depends_on).toMatchObject({ postgres: { condition: 'service_healthy' }, redis: { condition: 'service_healthy' } });
    expect(services.balancer.ports).toEqual(['8080:80']);
    const nginx = read('docker/nginx.conf');
    expect(nginx).toMatch(/server nyckel-a:3000/);
    expect(nginx).toMatch(/server nyckel-b:3000/);
    // Held status questions (up to 25 s) must outlive nginx's read timeout.
    expect(Number(/proxy_read_timeout (\d+)s/.exec(nginx)?.[1])).toBeGreaterThan(MAX_WAIT_SECONDS);
    expect(nginx).toMatch(/location = \/metrics \{\s*return 404;/);
  });

  test("the nodes' environment is made of known settings, with the issuer at the balancer and a shared database", () => {
    const env = compose.services['nyckel-a'].environment!;
    for (const name of Object.keys(env)) expect(Object.keys(settingsSchema.in.shape)).toContain(name);
    expect(env.ISSUER).toBe('http://localhost:8080');
    expect(env.DATABASE_URL).toMatch(/@postgres:5432\//);
    expect(env.REDIS_URL).toBe('redis://redis:6379');
    expect(env.NYCKEL_TRUST_PROXY).toBe('true');
    for (const volume of compose.services['nyckel-a'].volumes ?? []) {
      expect(fs.existsSync(path.resolve(root, 'docker', volume.split(':')[0]))).toBe(true);
    }
  });
});
