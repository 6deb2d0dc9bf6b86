import { ClientsFileError, type ClientsFile } from '../clients/clients-file.ts';
import { SettingsError, type Settings } from '../config/settings.ts';
import type { Factors } from './registry.ts';

/** NYCKEL_MFA_METHODS against the registry: empty means every installed method; an unknown one stops the start. */
export function withInstalledMethods(settings: Settings, factors: Factors): Settings {
  const unknown = factors.unknown(settings.mfa.methods);
  if (unknown.length) {
    throw new SettingsError([`NYCKEL_MFA_METHODS: unknown method(s) ${unknown.join(', ')}; installed: ${factors.ids.join(', ')}`]);
  }
  return settings.mfa.methods.length ? settings : { ...settings, mfa: { ...settings.mfa, methods: [...factors.ids] } };
}

/** The clients file, when every method it names is installed; else the start (or reload) is refused. */
export function withKnownMethods(file: ClientsFile, source: string, factors: Factors): ClientsFile {
  const installed = factors.ids.join(', ');
  const problems = file.clients.flatMap((client, index) =>
    (['methods', 'passwordless'] as const).flatMap((field) =>
      (client.mfa?.[field] ?? []).flatMap((id, at) =>
        factors.unknown([id]).length
          ? [`clients[${index}] (client_id "${client.client_id}").mfa.${field}[${at}]: unknown method ${id}; installed: ${installed}`]
          : [],
      ),
    ),
  );
  if (problems.length) throw new ClientsFileError(source, problems);
  return file;
}
