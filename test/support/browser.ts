import makeFetchCookie from 'fetch-cookie';
import { CookieJar } from 'tough-cookie';

export interface Page {
  status: number;
  url: string;
  html: string;
  headers: Headers;
}

/**
 * A scripted browser for HTTP-level tests: a cookie jar, manual redirects (so tests see each hop),
 * and helpers to read and submit the hosted pages' forms.
 */
export class FormBrowser {
  readonly jar = new CookieJar();
  private readonly fetchWithCookies = makeFetchCookie(fetch, this.jar);

  constructor(private readonly stopAt?: (url: URL) => boolean) {}

  async request(url: string, init: RequestInit = {}): Promise<Page> {
    const response = await this.fetchWithCookies(url, { ...init, redirect: 'manual' });
    return { status: response.status, url, html: await response.text(), headers: response.headers };
  }

  /** Follows redirects until a page that is not a redirect, or one `stopAt` matches (the RP's callback). */
  async go(url: string, init: RequestInit = {}): Promise<Page> {
    let page = await this.request(url, init);
    for (let hops = 0; hops < 20 && page.status >= 300 && page.status < 400; hops++) {
      const next = new URL(page.headers.get('location')!, page.url);
      if (this.stopAt?.(next)) return { ...page, url: next.toString() };
      page = await this.request(next.toString());
    }
    return page;
  }

  async submit(page: Page, action: string | RegExp, fields: Record<string, string>, extra: RequestInit = {}): Promise<Page> {
    const form = findForm(page.html, action);
    const body = new URLSearchParams({ ...form.hidden, ...fields });
    return this.go(new URL(form.action, page.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: body.toString(),
      ...extra,
    });
  }
}

export function findForm(html: string, action: string | RegExp): { action: string; hidden: Record<string, string> } {
  const forms = [...html.matchAll(/<form\b[^>]*>[\s\S]*?<\/form>/g)].map((m) => m[0]);
  const form = forms.find((f) => {
    const a = /action="([^"]*)"/.exec(f)?.[1] ?? '';
    return typeof action === 'string' ? a.endsWith(action) : action.test(a);
  });
  if (!form) throw new Error(`no form with action ${action} in page:\n${html.slice(0, 2000)}`);
  const hidden: Record<string, string> = {};
  for (const input of form.matchAll(/<input\b[^>]*type="hidden"[^>]*>/g)) {
    const name = /name="([^"]*)"/.exec(input[0])?.[1];
    const value = /value="([^"]*)"/.exec(input[0])?.[1] ?? '';
    if (name) hidden[name] = decodeEntities(value);
  }
  return { action: decodeEntities(/action="([^"]*)"/.exec(form)![1]), hidden };
}

export function decodeEntities(text: string): string {
  return text
    .replace(/&amp;/g, '&')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>');
}

export function textOf(html: string): string {
  return decodeEntities(html.replace(/<script[\s\S]*?<\/script>/g, '').replace(/<[^>]+>/g, ' '))
    .replace(/\s+/g, ' ')
    .trim();
}
