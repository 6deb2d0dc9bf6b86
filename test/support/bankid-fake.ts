import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';

/** The qrStartToken and qrStartSecret of BankID's documentation (the QR test vectors). */
export const DOC_QR_START_TOKEN = '67df3917-fa0d-44e5-b327-edcc928297f8';
export const DOC_QR_START_SECRET = 'd28db9a7-4cde-429e-a983-359be676944c';
/** The passphrase of BankID's public test certificate (FPTestcert5), used for the fake's too. */
export const TEST_PFX_PASSPHRASE = 'qwerty123';

/** How an order goes: the hint codes of its pending collects, then how it ends. */
export interface OrderScript {
  hints: string[];
  end: { complete: string } | { failed: string };
}

export interface FakeOrder {
  orderRef: string;
  endUserIp: string;
  body: Record<string, unknown>;
  script: OrderScript;
  collects: number;
  cancelled: boolean;
  /** The relying party certificate's subject CN presented on the /auth call. */
  clientCn?: string;
}

export interface BankIdCertificates {
  dir: string;
  ca: string;
  pfx: string;
  cert: string;
  key: string;
  serverCert: string;
  serverKey: string;
}

function openssl(args: string[], cwd: string) {
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}

/**
 * A CA, a server certificate for localhost/127.0.0.1 and a relying party certificate (PEM, and
 * PKCS#12 with the test passphrase), made with openssl in a fresh temporary directory.
 */
export function makeBankIdCertificates(): BankIdCertificates {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nyckel-bankid-'));
  const file = (name: string) => path.join(dir, name);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Fake BankID Test CA'], dir);
  fs.writeFileSync(file('server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost'], dir);
  openssl(
    ['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext'],
    dir,
  );
  fs.writeFileSync(file('client.ext'), 'extendedKeyUsage=clientAuth\n');
  openssl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=FP Testcert 5'], dir);
  openssl(
    ['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.pem', '-days', '2', '-extfile', 'client.ext'],
    dir,
  );
  openssl(['pkcs12', '-export', '-in', 'client.pem', '-inkey', 'client.key', '-out', 'client.p12', '-passout', `pass:${TEST_PFX_PASSPHRASE}`], dir);
  return {
    dir,
    ca: file('ca.pem'),
    pfx: file('client.p12'),
    cert: file('client.pem'),
    key: file('client.key'),
    serverCert: file('server.pem'),
    serverKey: file('server.key'),
  };
}

/**
 * A fake of BankID's RP API v6 (/auth, /collect, /cancel) on loopback over mutual TLS: a client
 * without a certificate of the test CA is refused at the handshake. Each order follows `nextScript`
 * (set by the test): every /collect answers the next hint code, then completes or fails. `down`
 * answers every call with 503 and no body (an outage); `failCollect` answers /collect with BankID's
 * 500 internalError.
 */
export async function startFakeBankId(certs: BankIdCertificates) {
  const orders = new Map<string, FakeOrder>();
  const state = {
    nextScript: { hints: ['outstandingTransaction', 'userSign'], end: { complete: '199001012385' } } as OrderScript,
    /** The QR secret and token every order gets (default: the documentation's test vector). */
    qrStartToken: DOC_QR_START_TOKEN,
    qrStartSecret: DOC_QR_START_SECRET,
    down: false,
    failCollect: false,
  };
  const server = https.createServer(
    {
      key: fs.readFileSync(certs.serverKey),
      cert: fs.readFileSync(certs.serverCert),
      ca: fs.readFileSync(certs.ca),
      requestCert: true,
      rejectUnauthorized: true,
    },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const reply = (status: number, body?: unknown) => {
          res.statusCode = status;
          if (body !== undefined) res.setHeader('Content-Type', 'application/json');
          res.end(body === undefined ? undefined : JSON.stringify(body));
        };
        if (state.down) return reply(503);
        let body: Record<string, unknown>;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          return reply(400, { errorCode: 'invalidParameters', details: 'Invalid JSON' });
        }
        const url = new URL(req.url!, 'https://fake');
        if (req.method !== 'POST') return reply(405, { errorCode: 'methodNotAllowed', details: '' });
        const order = typeof body.orderRef === 'string' ? orders.get(body.orderRef) : undefined;
        switch (url.pathname) {
          case '/rp/v6.0/auth': {
            if (typeof body.endUserIp !== 'string') return reply(400, { errorCode: 'invalidParameters', details: 'Invalid endUserIp' });
            const orderRef = crypto.randomUUID();
            const peer = (req.socket as TLSSocket).getPeerCertificate();
            orders.set(orderRef, {
              orderRef,
              endUserIp: body.endUserIp,
              body,
              script: state.nextScript,
              collects: 0,
              cancelled: false,
              clientCn: peer?.subject?.CN as string | undefined,
            });
            return reply(200, { orderRef, autoStartToken: crypto.randomUUID(), qrStartToken: state.qrStartToken, qrStartSecret: state.qrStartSecret });
          }
          case '/rp/v6.0/collect': {
            if (state.failCollect) return reply(500, { errorCode: 'internalError', details: 'Internal error' });
            if (!order) return reply(400, { errorCode: 'invalidParameters', details: 'No such order' });
            if (order.cancelled) return reply(200, { orderRef: order.orderRef, status: 'failed', hintCode: 'cancelled' });
            const step = order.collects++;
            if (step < order.script.hints.length) return reply(200, { orderRef: order.orderRef, status: 'pending', hintCode: order.script.hints[step] });
            if ('failed' in order.script.end) return reply(200, { orderRef: order.orderRef, status: 'failed', hintCode: order.script.end.failed });
            return reply(200, {
              orderRef: order.orderRef,
              status: 'complete',
              completionData: {
                user: { personalNumber: order.script.end.complete, name: 'Karl Karlsson', givenName: 'Karl', surname: 'Karlsson' },
                device: { ipAddress: order.endUserIp, uhi: 'OZvYM9VvyiAmG7NA5jU5zqGcVpo=' },
                bankIdIssueDate: '2024-01-01',
                signature: Buffer.from('<Signature/>').toString('base64'),
                ocspResponse: Buffer.from('ocsp').toString('base64'),
              },
            });
          }
          case '/rp/v6.0/cancel': {
            if (!order) return reply(400, { errorCode: 'invalidParameters', details: 'No such order' });
            order.cancelled = true;
            return reply(200, {});
          }
          default:
            return reply(404, { errorCode: 'notFound', details: '' });
        }
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    state,
    orders,
    url: `https://localhost:${port}/rp/v6.0`,
    /** The settings that point Nyckel at this fake (PKCS#12 with passphrase, as with BankID's test certificate). */
    env: (): Record<string, string> => ({
      NYCKEL_BANKID_URL: `https://localhost:${port}/rp/v6.0`,
      NYCKEL_BANKID_PFX: certs.pfx,
      NYCKEL_BANKID_PFX_PASSPHRASE: TEST_PFX_PASSPHRASE,
      NYCKEL_BANKID_CA: certs.ca,
      NYCKEL_BANKID_TIMEOUT_MS: '3000',
    }),
    last: () => [...orders.values()].at(-1),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type FakeBankId = Awaited<ReturnType<typeof startFakeBankId>>;

/** A valid personal number (Luhn check digit) for a birth date and a three-digit serial. */
export function personalNumberFor(yyyymmdd: string, serial: number): string {
  const body = `${yyyymmdd.slice(2)}${String(serial).padStart(3, '0')}`;
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[i]) * (i % 2 === 0 ? 2 : 1);
    if (d > 9) d -= 9;
    sum += d;
  }
  return `${yyyymmdd}${String(serial).padStart(3, '0')}${(10 - (sum % 10)) % 10}`;
}
