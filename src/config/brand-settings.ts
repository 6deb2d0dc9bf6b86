import { z } from 'zod';

/** The relative luminance of an sRGB colour #rrggbb (WCAG 2.2). */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}

export function contrastRatio(a: string, b: string): number {
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

/** #abc or #aabbcc, as #aabbcc in lower case. */
const hexColour = z
  .string()
  .trim()
  .regex(/^#([0-9a-f]{3}|[0-9a-f]{6})$/i, 'must be a hex colour such as #0b5cad')
  .transform((c) => (c.length === 4 ? `#${[...c.slice(1)].map((d) => d + d).join('')}` : c).toLowerCase());

/**
 * The installation's brand: what the hosted pages and mails call the service, its logo, colours and
 * support contact. Unset, the pages show the plain wordmark "Nyckel" in the default colours.
 */
export const brandSettingsShape = {
  NYCKEL_BRAND_NAME: z
    .string()
    .trim()
    .min(1)
    .max(60)
    .regex(/^[^\r\n<>"]+$/, 'must be one line without < > or "')
    .optional(),
  NYCKEL_BRAND_LOGO: z.string().min(1).optional(),
  NYCKEL_BRAND_PRIMARY_COLOR: hexColour
    // Links and buttons: text in it on white, and white text on it, must be readable (WCAG AA).
    .refine((c) => contrastRatio(c, '#ffffff') >= 4.5, {
      message: 'must have a contrast of at least 4.5:1 against white (links and button text); pick a darker colour',
    })
    .optional(),
  NYCKEL_BRAND_ACCENT_COLOR: hexColour.optional(),
  NYCKEL_SUPPORT_EMAIL: z.email('must be an email address').optional(),
  NYCKEL_SUPPORT_URL: z
    .url()
    .regex(/^https?:\/\//, 'must be an http(s):// URL')
    .optional(),
  NYCKEL_SUPPORT_TEXT: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .regex(/^[^\r\n]+$/, 'must be one line')
    .optional(),
};

type BrandEnv = { [K in keyof typeof brandSettingsShape]?: z.output<(typeof brandSettingsShape)[K]> };

/** Who helps people who are stuck: any of an address, a web page and a line of text (a phone number, opening hours). */
export interface SupportContact {
  email?: string;
  url?: string;
  text?: string;
}

export interface BrandSettings {
  /** The service's name in the header, page titles and mails. */
  name: string;
  /** Whether NYCKEL_BRAND_NAME was set: only then does it replace the display name in NYCKEL_MAIL_FROM. */
  named: boolean;
  /** A PNG or SVG file, read and checked at start (src/branding/logo.ts). */
  logoFile?: string;
  colours: { primary?: string; accent?: string };
  support?: SupportContact;
}

export const DEFAULT_BRAND_NAME = 'Nyckel';

export function brandSettings(raw: BrandEnv): { brand: BrandSettings } {
  const support = { email: raw.NYCKEL_SUPPORT_EMAIL, url: raw.NYCKEL_SUPPORT_URL, text: raw.NYCKEL_SUPPORT_TEXT };
  return {
    brand: {
      name: raw.NYCKEL_BRAND_NAME ?? DEFAULT_BRAND_NAME,
      named: raw.NYCKEL_BRAND_NAME !== undefined,
      logoFile: raw.NYCKEL_BRAND_LOGO,
      colours: { primary: raw.NYCKEL_BRAND_PRIMARY_COLOR, accent: raw.NYCKEL_BRAND_ACCENT_COLOR },
      support: support.email || support.url || support.text ? support : undefined,
    },
  };
}
