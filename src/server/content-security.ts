/**
 * The pages' Content-Security-Policy: their own scripts, styles and images only, no inline script,
 * never framed. Frames of other origins are allowed only on the page that signs the user out of their
 * apps (OIDC Front-Channel Logout), for those apps' origins and that response alone.
 */
export function pageDirectives(issuer: string, options: { frameOrigins?: readonly string[] } = {}): Record<string, string[]> {
  return {
    'default-src': ["'self'"],
    'script-src': ["'self'"],
    'style-src': ["'self'"],
    'img-src': ["'self'", 'data:'],
    'object-src': ["'none'"],
    'base-uri': ["'none'"],
    'frame-ancestors': ["'none'"],
    ...(options.frameOrigins ? { 'frame-src': [...options.frameOrigins] } : {}),
    // No form-action: browsers apply it to the redirect back to the relying party after a form post.
    ...(issuer.startsWith('https:') ? { 'upgrade-insecure-requests': [] } : {}),
  };
}

/** The header's value for the directives. */
export function policyText(directives: Record<string, string[]>): string {
  return Object.entries(directives)
    .map(([name, sources]) => [name, ...sources].join(' '))
    .join('; ');
}
