import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SendgridRequest {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  // The JSON body as SendGrid's SDK sent it; the tests read its fields freely.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  /** Set when the fake held this request without answering (`hangNext`). */
  hung?: true;
}

/**
 * A fake of SendGrid's POST /v3/mail/send on loopback; `answers` are used in turn, then 202.
 * `hangNext(n)` reads the next n requests and never answers them (a provider that hangs), until `close()`.
 */
export async function startFakeSendgrid() {
  const requests: SendgridRequest[] = [];
  const answers: Array<{ status: number; body?: unknown }> = [];
  let hanging = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const request: SendgridRequest = { method: req.method!, url: req.url!, headers: req.headers, body: text ? JSON.parse(text) : undefined };
      requests.push(request);
      if (hanging > 0) {
        hanging--;
        request.hung = true;
        return;
      }
      const answer = req.method === 'POST' && req.url === '/v3/mail/send' ? (answers.shift() ?? { status: 202 }) : { status: 404 };
      res.statusCode = answer.status;
      if (answer.body === undefined) return res.end();
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    baseUrl,
    requests,
    answers,
    hangNext: (times = 1) => {
      hanging += times;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
