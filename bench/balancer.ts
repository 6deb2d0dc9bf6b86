import http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Headers of one connection, not of the message (RFC 9110 7.6.1): never passed on. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'proxy-authorization',
  'proxy-authenticate',
]);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !HOP_BY_HOP.has(name)));
}

export interface Balancer {
  /** http://127.0.0.1:<port>, where the benchmark sends its requests. */
  base: URL;
  port: number;
  /**
   * The node ports requests go to, in turn (one request to the next node, whatever the cookies);
   * each request forwarded is counted in `counts` under its node's port. Called again with the
   * same two objects, it changes nothing (the turn goes on).
   */
  route(ports: number[], counts?: Map<number, number>): void;
  close(): Promise<void>;
}

/**
 * A round-robin HTTP balancer on 127.0.0.1: each request (method, path, headers, body) goes to the
 * next node and the answer streams back as it comes. No stickiness, so the requests of one sign-in
 * land on different nodes; the Host header is kept, so the nodes see one origin (the issuer's).
 */
export async function startBalancer(): Promise<Balancer> {
  let ports: number[] = [];
  let counts = new Map<number, number>();
  let turn = 0;
  // Idle connections are dropped after 4 s, before a node's own 5-s keep-alive timeout closes them:
  // otherwise a request can be sent on a connection the node is closing at that moment (a reset).
  const agent = new http.Agent({ keepAlive: true, maxSockets: Infinity, timeout: 4000 });

  const server = http.createServer((req, res) => {
    if (ports.length === 0) {
      res.writeHead(503, { 'content-type': 'text/plain' }).end('no node behind the balancer\n');
      return;
    }
    const port = ports[turn++ % ports.length];
    counts.set(port, (counts.get(port) ?? 0) + 1);
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: endToEnd(req.headers), agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, endToEnd(answer.headers));
      answer.pipe(res);
      answer.once('error', () => res.destroy());
    });
    upstream.once('error', (error) => {
      if (res.headersSent) res.destroy(error);
      else res.writeHead(502, { 'content-type': 'text/plain' }).end(`balancer: node on port ${port} failed: ${error.message}\n`);
    });
    // The client gave up: so does the request to the node.
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    req.pipe(upstream);
  });
  server.keepAliveTimeout = 5000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    base: new URL(`http://127.0.0.1:${port}`),
    port,
    route: (next, countIn = new Map()) => {
      if (next === ports && countIn === counts) return;
      ports = next;
      counts = countIn;
      turn = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        agent.destroy();
      }),
  };
}
