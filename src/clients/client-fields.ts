import { z } from 'zod';

/** The fields of a client entry that are more than a plain string or number. */

export const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** The URL, or an issue "is not an absolute URL". */
function absoluteUrl(value: string, ctx: z.RefinementCtx): URL | undefined {
  try {
    return new URL(value);
  } catch {
    ctx.addIssue({ code: 'custom', message: 'is not an absolute URL' });
    return undefined;
  }
}

/** https, or http on loopback (a relying party's URL: redirect URIs, jwks_uri). */
export const webUrl = z.string().superRefine((value, ctx) => {
  const url = absoluteUrl(value, ctx);
  if (!url) return;
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname))) {
    ctx.addIssue({ code: 'custom', message: 'must use https (http is allowed only for localhost)' });
  }
});

/**
 * An app's front-channel logout URL (OIDC Front-Channel Logout 1.0): loaded in a frame of Nyckel's
 * sign-out page, so https or http on loopback; it may carry a query (Nyckel adds iss and sid to it)
 * but no fragment.
 */
export const frontchannelLogoutUri = webUrl.superRefine((value, ctx) => {
  if (URL.canParse(value) && new URL(value).hash) ctx.addIssue({ code: 'custom', message: 'must not contain a fragment (#…)' });
});

/** A relying party's public signing key (private_key_jwt): never a private one. */
export const publicJwk = z
  .looseObject({ kty: z.enum(['RSA', 'EC', 'OKP']), kid: z.string().min(1).optional(), use: z.literal('sig').optional() })
  .refine((jwk) => !['d', 'p', 'q', 'dp', 'dq', 'qi', 'k'].some((member) => member in jwk), 'must be a public key (it has a private member such as "d")');

/** How a client authenticates at the token endpoint; discovery advertises exactly these. */
export const tokenEndpointAuthMethods = ['none', 'client_secret_basic', 'client_secret_post', 'client_secret_jwt', 'private_key_jwt'] as const;

export const redirectUri = z.string().superRefine((value, ctx) => {
  const url = absoluteUrl(value, ctx);
  if (!url) return;
  if (url.hash) ctx.addIssue({ code: 'custom', message: 'must not contain a fragment (#…)' });
  const webScheme = url.protocol === 'https:' || url.protocol === 'http:';
  if (url.protocol === 'http:' && !LOOPBACK_HOSTS.has(url.hostname)) {
    ctx.addIssue({ code: 'custom', message: 'must use https (http is allowed only for localhost)' });
  }
  if (!webScheme && !/^[a-z][a-z0-9+.-]*\.[a-z0-9+.-]+:$/.test(url.protocol)) {
    ctx.addIssue({ code: 'custom', message: 'must be https, or a private-use scheme in reverse-domain form (com.example.app:/cb)' });
  }
});

export const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]+$/, 'is not a valid scope token');

export const oneLine = (max: number) =>
  z
    .string()
    .trim()
    .min(1)
    .max(max)
    .regex(/^[^\r\n]+$/, 'must be one line');

/** Who helps a client's users: "IT-support, 08-123 45 67", or { email, url, text }. */
export const supportContact = z.union([
  oneLine(200).transform((text) => ({ text })),
  z
    .object({
      email: z.email().optional(),
      url: z
        .url()
        .regex(/^https?:\/\//, 'must be an http(s):// URL')
        .optional(),
      text: oneLine(200).optional(),
    })
    .strict()
    .refine((c) => c.email || c.url || c.text, 'needs at least one of email, url, text'),
]);
