import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * Nyckel's Prometheus metrics. Each Nyckel owns its registry (never prom-client's global one), so
 * several instances in one process (the tests) count apart. Labels are fixed, small sets — outcomes,
 * factor ids, transports, coarse route classes — and never carry an address, a user id or a path.
 */

/** A completed sign-in is `success`; the others are failed attempts. */
export type LoginOutcome = 'success' | 'wrong_password' | 'factor_failed' | 'locked' | 'rate_limited';
export type FactorVerifyOutcome = 'verified' | 'pending' | 'failed';
export type DeliveryChannel = 'mail' | 'sms';
/** `retry`: a mail send failed and will be tried again; `failed`: given up (mail) or not sent (SMS). */
export type DeliveryOutcome = 'sent' | 'retry' | 'failed';

export class Metrics {
  readonly registry = new Registry();

  private readonly logins = new Counter({
    name: 'nyckel_logins_total',
    help: 'Sign-ins completed (outcome="success"; factor = the second factor used, or "none") and failed attempts (factor = the module id, or "password").',
    labelNames: ['outcome', 'factor'] as const,
    registers: [this.registry],
  });

  private readonly factorVerifySeconds = new Histogram({
    name: 'nyckel_factor_verify_seconds',
    help: 'How long a second factor took to check an answer.',
    labelNames: ['factor', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly deliveries = new Counter({
    name: 'nyckel_deliveries_total',
    help: 'Sends of mail and SMS by channel, transport and outcome (sent, retry, failed).',
    labelNames: ['channel', 'transport', 'outcome'] as const,
    registers: [this.registry],
  });

  private readonly rateLimitRefusals = new Counter({
    name: 'nyckel_rate_limit_refusals_total',
    help: 'Requests refused by a rate limit or failure lock, by limiter.',
    labelNames: ['limiter'] as const,
    registers: [this.registry],
  });

  private readonly tokensIssued = new Counter({
    name: 'nyckel_tokens_issued_total',
    help: 'Tokens and codes issued by the OIDC provider, by kind.',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });

  private readonly httpRequests = new Counter({
    name: 'nyckel_http_requests_total',
    help: 'HTTP responses by method, coarse route class and status.',
    labelNames: ['method', 'route_class', 'status'] as const,
    registers: [this.registry],
  });

  constructor() {
    // Process memory, CPU, event loop lag, GC, handles: the standard names dashboards expect.
    collectDefaultMetrics({ register: this.registry });
  }

  login(outcome: LoginOutcome, factor: string): void {
    this.logins.inc({ outcome, factor });
  }

  factorVerified(factor: string, outcome: FactorVerifyOutcome, seconds: number): void {
    this.factorVerifySeconds.observe({ factor, outcome }, seconds);
  }

  delivery(channel: DeliveryChannel, transport: string, outcome: DeliveryOutcome): void {
    this.deliveries.inc({ channel, transport, outcome });
  }

  rateLimitRefused(limiter: string): void {
    this.rateLimitRefusals.inc({ limiter });
  }

  tokenIssued(kind: string): void {
    this.tokensIssued.inc({ kind });
  }

  httpResponse(method: string, routeClass: string, status: number): void {
    this.httpRequests.inc({ method, route_class: routeClass, status: String(status) });
  }

  /** The Prometheus text exposition and its content type. */
  async exposition(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** Seconds since `started` (from `process.hrtime.bigint()`). */
export function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
