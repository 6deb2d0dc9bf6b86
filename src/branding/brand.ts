import crypto from 'node:crypto';
import type { BrandSettings, SupportContact } from '../config/brand-settings.ts';
import { SettingsError } from '../config/settings.ts';
import type { ClientConfig } from '../clients/clients-file.ts';
import { readLogo, type Logo } from '../clients/logo.ts';

export type { SupportContact } from '../config/brand-settings.ts';

/** What a hosted page shows of the brand: the installation's, and the client's where the page is for one. */
export interface PageBrand {
  name: string;
  logo?: string;
  stylesheet: string;
  /** The client's own logo beside "Signing in to <client>". */
  clientLogo?: string;
  support?: SupportContact;
}

interface Asset {
  type: string;
  bytes: Buffer;
}

/** The clients as the brand sees them (src/clients/directory.ts; replaced on reload, so read per call). */
export interface BrandClients {
  get(clientId: string | undefined): ClientConfig | undefined;
  readonly file: { clients: ClientConfig[] };
}

/** The colours as CSS custom properties, in a stylesheet of its own (the CSP allows no inline styles). */
function stylesheetOf(colours: BrandSettings['colours']): string {
  const lines = [
    ...(colours.primary ? [`  --accent: ${colours.primary};`, '  --accent-ink: #ffffff;'] : []),
    ...(colours.accent ? [`  --brand-accent: ${colours.accent};`] : []),
  ];
  return lines.length ? `:root {\n${lines.join('\n')}\n}\n` : '/* the default colours of nyckel.css */\n';
}

/**
 * The installation's brand (NYCKEL_BRAND_*, NYCKEL_SUPPORT_*) and each client's overrides from the
 * clients file (client_name, logo_file, support_contact, mail_sender_name).
 */
export class Branding {
  readonly name: string;
  readonly logo?: Logo;
  readonly stylesheet: { path: string; css: Buffer };
  private readonly support?: SupportContact;
  private readonly named: boolean;

  constructor(
    settings: BrandSettings,
    private readonly clients: BrandClients,
  ) {
    this.name = settings.name;
    this.named = settings.named;
    this.support = settings.support;
    if (settings.logoFile) {
      try {
        this.logo = readLogo(settings.logoFile);
      } catch (error) {
        throw new SettingsError([`NYCKEL_BRAND_LOGO: ${(error as Error).message}`]);
      }
    }
    const css = Buffer.from(stylesheetOf(settings.colours));
    this.stylesheet = { path: `/assets/brand-${crypto.createHash('sha256').update(css).digest('base64url').slice(0, 16)}.css`, css };
  }

  /** The name people know the client by (its `client_name`, else `name`). */
  clientName(clientId: string | undefined): string | undefined {
    const client = this.clients.get(clientId);
    return client ? (client.client_name ?? client.name) : undefined;
  }

  /** Who helps the client's users: the client's support contact, else the installation's. */
  supportFor(clientId: string | undefined): SupportContact | undefined {
    return this.clients.get(clientId)?.support_contact ?? this.support;
  }

  /**
   * The name in a mail's From: the client's `mail_sender_name`, else the service's name when one is
   * set; undefined: the name in NYCKEL_MAIL_FROM stays.
   */
  senderName(clientId: string | undefined): string | undefined {
    return this.clients.get(clientId)?.mail_sender_name ?? (this.named ? this.name : undefined);
  }

  page(clientId: string | undefined): PageBrand {
    return {
      name: this.name,
      logo: this.logo?.path,
      stylesheet: this.stylesheet.path,
      clientLogo: this.clients.get(clientId)?.logo?.path,
      support: this.supportFor(clientId),
    };
  }

  /** The stylesheet and the logos (the installation's and the clients' in force), by URL path. */
  asset(path: string): Asset | undefined {
    if (path === this.stylesheet.path) return { type: 'text/css; charset=utf-8', bytes: this.stylesheet.css };
    if (this.logo?.path === path) return { type: this.logo.type, bytes: this.logo.bytes };
    const logo = this.clients.file.clients.find((client) => client.logo?.path === path)?.logo;
    return logo ? { type: logo.type, bytes: logo.bytes } : undefined;
  }
}
