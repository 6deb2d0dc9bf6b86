import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type RequestHandler } from 'express';
import { FormBrowser, type Page } from './browser.ts';
import { TEST_PASSWORD } from './nyckel.ts';

/**
 * A real relying-party web app (express) on loopback. It listens before Nyckel starts, so the clients
 * file can name its exact redirect URIs; `mount` then puts the library's middleware and routes in.
 * Its URL is on 127.0.0.1 while Nyckel's is on localhost, so the two sites keep separate cookies.
 */
export interface RelyingPartyApp {
  url: string;
  mount(handler: RequestHandler): void;
  close(): Promise<void>;
}

export async function listeningApp(): Promise<RelyingPartyApp> {
  let mounted: RequestHandler = (_req, res) => void res.status(503).send('not mounted yet');
  const app = express();
  app.use((req, res, next) => mounted(req, res, next));
  // The app's own answer to a library error: its message as JSON, so a failing test shows why.
  const showError: ErrorRequestHandler = (error: Error & { status?: number }, _req, res, _next) => {
    res.status(error.status ?? 500).json({ error: error.name, message: error.message });
  };
  app.use(showError);
  const server = http.createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    mount: (handler) => (mounted = handler),
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** A JSON page of the app (the browser follows the redirects to it). */
export function jsonOf<T = Record<string, unknown>>(page: Page): T {
  if (page.status !== 200) throw new Error(`expected the app's JSON, got ${page.status} at ${page.url}:\n${page.html.slice(0, 1500)}`);
  return JSON.parse(page.html) as T;
}

/** On Nyckel's login page (reached from the app): the password, then whatever page comes next. */
export async function signInOnNyckel(browser: FormBrowser, loginPage: Page, email: string): Promise<Page> {
  if (!loginPage.html.includes('name="password"')) throw new Error(`not Nyckel's login page: ${loginPage.url}\n${loginPage.html.slice(0, 1500)}`);
  return browser.submit(loginPage, '/login', { email, password: TEST_PASSWORD });
}
