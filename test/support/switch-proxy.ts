import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback load balancer whose backend the test picks: `to(port)` sends every following request to
 * that node. The browser and the relying party see one origin (the issuer), as behind a real balancer.
 */
export interface SwitchProxy {
  url: string;
  to(port: number): void;
  /** Requests forwarded to each backend port so far. */
  served: Map<number, number>;
  close(): Promise<void>;
}

export async function startSwitchProxy(initial: number): Promise<SwitchProxy> {
  let target = initial;
  const served = new Map<number, number>();
  const server = http.createServer((req, res) => {
    const port = target;
    served.set(port, (served.get(port) ?? 0) + 1);
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers: req.headers, agent: false }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => {
      if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
      res.end('backend unreachable');
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    to: (next) => {
      target = next;
    },
    served,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
