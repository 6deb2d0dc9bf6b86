// What the production logger (src/logger.ts) does with secrets that reach a log call by way of an
// error or a URL: errors of real libraries, a real link path.
import { Writable } from 'node:stream';
import { afterAll, describe, expect, test } from '@jest/globals';
import { Redis } from 'ioredis';
import { createLogger } from '../../src/logger.ts';
import { openDatabase } from '../../src/storage/db.ts';
import { freshRedisPrefix, redisTestUrl } from '../support/redis.ts';

function capture() {
  let text = '';
  const sink = new Writable({
    write(chunk, _encoding, done) {
      text += chunk;
      done();
    },
  });
  return { logger: createLogger('trace', sink), text: () => text };
}

const token = 'Zq3vG8xkR2pWm7tLs9Yb4nHc6JdQe1Fa5Uo0Ti8Kr2M';

describe('errors in the log', () => {
  const redisKeys = freshRedisPrefix();
  afterAll(() => redisKeys.drop());

  test("a failed Redis command's arguments (a token id, a payload) are not logged; what failed is", async () => {
    const redis = new Redis(redisTestUrl, { keyPrefix: redisKeys.prefix, lazyConnect: true, maxRetriesPerRequest: 1 });
    await redis.connect();
    let error: unknown;
    try {
      await redis.set(`oidc:AccessToken:${token}`, 'a string');
      // The wrong type for the key: Redis answers WRONGTYPE, ioredis hangs the command on the error.
      await redis.hset(`oidc:AccessToken:${token}`, 'payload', JSON.stringify({ jti: token }));
    } catch (thrown) {
      error = thrown;
    } finally {
      redis.disconnect();
    }
    expect(JSON.stringify((error as { command?: unknown }).command)).toContain(token);

    const { logger, text } = capture();
    logger.error({ err: error }, 'unhandled error');
    logger.warn({ error }, 'under another key');
    expect(text()).toContain('WRONGTYPE');
    expect(text()).toContain('"name":"hset"');
    expect(text()).not.toContain(token);
  });

  test('a call Prisma refuses is logged without its arguments', async () => {
    const db = await openDatabase({ kind: 'pglite-memory' });
    let error: unknown;
    try {
      await db.prisma.delivery.create({ data: { recipient: 'a@example.se', text: `Your code is 246810, ${token}`, unknown: true } as never });
    } catch (thrown) {
      error = thrown;
    } finally {
      await db.close();
    }
    expect((error as Error).message).toContain('246810');

    const { logger, text } = capture();
    logger.error({ err: error }, 'unhandled error');
    expect(text()).toContain('PrismaClientValidationError');
    expect(text()).toContain('invocation: Argument');
    expect(text()).not.toContain('246810');
    expect(text()).not.toContain(token);
  });
});

describe('URLs in the log', () => {
  test("an email link's token and the codes and tokens in a query are replaced; the rest of the URL stays", () => {
    const { logger, text } = capture();
    const challenge = '7f1c2a9e-5b44-4c1d-9a60-2f1b7d3e8c01';
    logger.info({ url: `/interaction/uid123/link/${challenge}/${token}` }, 'request');
    logger.info({ req: { url: `/cb?code=${token}&state=s1`, method: 'GET' } }, 'request');
    logger.info({ request: { path: `/token/revocation?token=${token}` } }, 'request');
    expect(text()).not.toContain(token);
    expect(text()).toContain(`/interaction/uid123/link/${challenge}/[redacted]`);
    expect(text()).toContain('/cb?code=[redacted]&state=s1');
    expect(text()).toContain('/token/revocation?token=[redacted]');
  });
});
