import { NyckelError } from '../errors.ts';

/**
 * Whether an error means a store Nyckel depends on (the PostgreSQL server, Redis) cannot be reached
 * right now — refused, dropped, restarting, out of connections — rather than that the request or the
 * code is wrong. Such a request is answered 503 temporarily_unavailable and succeeds again once the
 * store is back (the pg pool and ioredis reconnect by themselves).
 *
 * What reaches the code, as observed with Prisma 7 and @prisma/adapter-pg:
 * - a pool connection refused: PrismaClientKnownRequestError P1001, meta.driverAdapterError.cause.kind
 *   DatabaseNotReachable;
 * - a connection dropped (server restart, network cut): pg's plain Error "Connection terminated
 *   unexpectedly", passed through by Prisma;
 * - a session killed by the server: P2010 (or another P2xxx) with SQLSTATE 57P01 in the adapter error.
 */
export const STORAGE_RETRY_AFTER_SECONDS = 5;

/** Prisma: can't reach, timed out, server closed the connection, pool timeout, too many connections. */
const prismaCodes = new Set(['P1001', 'P1002', 'P1008', 'P1017', 'P2024', 'P2037']);
/** @prisma/driver-adapter-utils error kinds for the same. */
const adapterKinds = new Set(['DatabaseNotReachable', 'ConnectionClosed', 'SocketTimeout', 'TooManyConnections']);
/** SQLSTATE: connection exceptions (08…), shutdown or start-up (57P01–57P03), too many connections. */
const sqlStates = /^(08[0-9A-Z]{3}|57P0[123]|53300)$/;
const socketCodes = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);
const errorNames = new Set([
  'MaxRetriesPerRequestError', // ioredis: retries used up while disconnected
  'RedisUnavailableError', // src/storage/redis.ts
]);
const messages = [
  /^Connection terminated/, // pg: "… unexpectedly", "… due to connection timeout"
  /^timeout exceeded when trying to connect$/, // pg-pool: connectionTimeoutMillis
  /^Client has encountered a connection error and is not queryable$/, // pg
  /^Connection is closed\.?$/, // ioredis
  /^Stream isn't writeable and enableOfflineQueue options is false$/, // ioredis, offline queue off
  /^Command timed out$/, // ioredis: commandTimeout
];

function isUnavailableHere(error: Record<string, unknown>): boolean {
  const { code, errorCode, kind, originalCode, name, message } = error;
  if (typeof code === 'string' && (prismaCodes.has(code) || socketCodes.has(code) || sqlStates.test(code))) return true;
  if (typeof errorCode === 'string' && prismaCodes.has(errorCode)) return true; // PrismaClientInitializationError
  if (typeof kind === 'string' && adapterKinds.has(kind)) return true;
  if (typeof originalCode === 'string' && sqlStates.test(originalCode)) return true;
  if (typeof name === 'string' && errorNames.has(name)) return true;
  return typeof message === 'string' && messages.some((pattern) => pattern.test(message));
}

/** The error itself and what it wraps: `cause` chains and Prisma's driver adapter error. */
function* causes(error: unknown): Generator<Record<string, unknown>> {
  const pending = [error];
  for (let seen = 0; pending.length && seen < 10; seen++) {
    const current = pending.shift();
    if (!current || typeof current !== 'object') continue;
    const record = current as Record<string, unknown>;
    yield record;
    pending.push(record.cause, (record.meta as { driverAdapterError?: unknown } | undefined)?.driverAdapterError);
  }
}

export function isStorageUnavailable(error: unknown): boolean {
  for (const candidate of causes(error)) if (isUnavailableHere(candidate)) return true;
  return false;
}

/** What a request that met such an error answers (hosted pages and JSON alike). */
export function storageUnavailable(cause: unknown): NyckelError {
  return new NyckelError('temporarily_unavailable', 'the service is temporarily unavailable; try again in a moment', {
    cause,
    retryAfterSeconds: STORAGE_RETRY_AFTER_SECONDS,
  });
}
