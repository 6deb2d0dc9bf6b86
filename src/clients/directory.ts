import type { ClientConfig, ClientsFile } from './clients-file.ts';

/** The clients file currently in force; replaced as a whole on reload (SIGHUP). */
export class ClientDirectory {
  private byId = new Map<string, ClientConfig>();

  constructor(private current: ClientsFile) {
    this.replace(current);
  }

  replace(file: ClientsFile) {
    this.current = file;
    this.byId = new Map(file.clients.map((client) => [client.client_id, client]));
  }

  get file(): ClientsFile {
    return this.current;
  }

  get(clientId: string | undefined): ClientConfig | undefined {
    return clientId ? this.byId.get(clientId) : undefined;
  }

  /** Where "return to the app" links go: the origin of its first redirect URI. */
  homeOf(clientId: string | undefined): string | undefined {
    const client = this.get(clientId);
    const uri = client?.post_logout_redirect_uris[0] ?? client?.redirect_uris[0];
    if (!uri) return undefined;
    try {
      const url = new URL(uri);
      return url.protocol === 'https:' || url.protocol === 'http:' ? `${url.origin}/` : undefined;
    } catch {
      return undefined;
    }
  }
}
