import fs from 'node:fs';
import https from 'node:https';
import { z } from 'zod';

/** Where and how to reach BankID's RP API: mutual TLS with the relying party's certificate. */
export interface BankIdConnection {
  /** E.g. https://appapi2.test.bankid.com/rp/v6.0 (no trailing slash needed). */
  url: string;
  /** A PKCS#12 file and its passphrase, or a PEM certificate and key. */
  pfx?: string;
  passphrase?: string;
  cert?: string;
  key?: string;
  /** The CA that issued BankID's server certificate (PEM). */
  ca: string;
  timeoutMs: number;
}

/** The hint codes of BankID's RP API v6; unknown ones are kept as they come (BankID may add more). */
export const pendingHints = ['outstandingTransaction', 'noClient', 'started', 'userMrtd', 'userCallConfirm', 'userSign'] as const;
export const failedHints = [
  'expiredTransaction',
  'certificateErr',
  'userCancel',
  'cancelled',
  'startFailed',
  'userDeclinedCall',
  'notSupported',
  'transactionRiskBlocked',
] as const;

const authResponse = z.object({
  orderRef: z.string().min(1).max(100),
  autoStartToken: z.string().min(1).max(100),
  qrStartToken: z.string().min(1).max(100),
  qrStartSecret: z.string().min(1).max(100),
});
export type AuthOrder = z.infer<typeof authResponse>;

const collectResponse = z.discriminatedUnion('status', [
  z.object({ orderRef: z.string(), status: z.literal('pending'), hintCode: z.string().max(60).optional() }),
  z.object({ orderRef: z.string(), status: z.literal('failed'), hintCode: z.string().max(60).optional() }),
  z.object({
    orderRef: z.string(),
    status: z.literal('complete'),
    completionData: z.object({
      user: z.object({
        personalNumber: z.string().regex(/^\d{12}$/),
        name: z.string().optional(),
        givenName: z.string().optional(),
        surname: z.string().optional(),
      }),
      device: z.object({ ipAddress: z.string().optional(), uhi: z.string().optional() }).optional(),
      bankIdIssueDate: z.string().optional(),
      stepUp: z.object({ mrtd: z.boolean().optional() }).optional(),
      signature: z.string().optional(),
      ocspResponse: z.string().optional(),
    }),
  }),
]);
export type CollectResult = z.infer<typeof collectResponse>;

const errorResponse = z.object({ errorCode: z.string().max(60), details: z.string().max(500).optional() });

/**
 * Why a call to BankID did not give an answer: `unreachable` (network, TLS, timeout), `refused`
 * (BankID's errorCode, e.g. alreadyInProgress, invalidParameters, maintenance), `invalid_response`.
 */
export class BankIdError extends Error {
  constructor(
    readonly kind: 'unreachable' | 'refused' | 'invalid_response',
    readonly errorCode?: string,
    options?: { cause?: unknown },
  ) {
    super(`BankID ${kind}${errorCode ? `: ${errorCode}` : ''}`, options);
    this.name = 'BankIdError';
  }
}

/** BankID's Relying Party API v6: /auth, /collect, /cancel, over mutual TLS, with short timeouts. */
export class BankIdClient {
  private readonly agent: https.Agent;
  private readonly base: URL;

  constructor(private readonly connection: BankIdConnection) {
    const read = (file?: string) => (file ? fs.readFileSync(file) : undefined);
    this.agent = new https.Agent({
      keepAlive: true,
      pfx: read(connection.pfx),
      passphrase: connection.passphrase,
      cert: read(connection.cert),
      key: read(connection.key),
      ca: read(connection.ca),
      minVersion: 'TLSv1.2',
    });
    this.base = new URL(connection.url.replace(/\/?$/, '/'));
  }

  auth(input: { endUserIp: string; userVisibleData?: string; pinCode?: boolean }): Promise<AuthOrder> {
    const body: Record<string, unknown> = { endUserIp: input.endUserIp };
    if (input.userVisibleData) {
      body.userVisibleData = Buffer.from(input.userVisibleData, 'utf8').toString('base64');
      body.userVisibleDataFormat = 'simpleMarkdownV1';
    }
    if (input.pinCode) body.requirement = { pinCode: true };
    return this.call('auth', body, authResponse);
  }

  collect(orderRef: string): Promise<CollectResult> {
    return this.call('collect', { orderRef }, collectResponse);
  }

  async cancel(orderRef: string): Promise<void> {
    await this.call('cancel', { orderRef }, z.object({}).loose());
  }

  close() {
    this.agent.destroy();
  }

  private call<T>(path: string, body: unknown, schema: z.ZodType<T>): Promise<T> {
    const payload = Buffer.from(JSON.stringify(body));
    const url = new URL(path, this.base);
    return new Promise<T>((resolve, reject) => {
      const request = https.request(
        url,
        {
          method: 'POST',
          agent: this.agent,
          headers: { 'content-type': 'application/json', 'content-length': payload.length, accept: 'application/json' },
          timeout: this.connection.timeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > 256 * 1024) return request.destroy(new BankIdError('invalid_response'));
            chunks.push(chunk);
          });
          response.on('error', (error) => reject(new BankIdError('unreachable', undefined, { cause: error })));
          response.on('end', () => {
            let json: unknown;
            try {
              json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
            } catch {
              json = undefined;
            }
            const status = response.statusCode ?? 0;
            if (status !== 200) {
              const error = errorResponse.safeParse(json);
              // A 5xx without BankID's error body is a proxy or an outage: BankID could not be asked.
              if (!error.success) return reject(new BankIdError(status >= 500 ? 'unreachable' : 'invalid_response', `http_${status}`));
              return reject(new BankIdError('refused', error.data.errorCode));
            }
            const parsed = schema.safeParse(json);
            if (!parsed.success) return reject(new BankIdError('invalid_response'));
            resolve(parsed.data);
          });
        },
      );
      request.on('timeout', () => request.destroy(new Error(`no answer within ${this.connection.timeoutMs} ms`)));
      request.on('error', (error) => reject(error instanceof BankIdError ? error : new BankIdError('unreachable', undefined, { cause: error })));
      request.end(payload);
    });
  }
}
