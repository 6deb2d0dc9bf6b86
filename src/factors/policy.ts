import type { ClientConfig, FactorId } from '../clients/clients-file.ts';
import type { Settings } from '../config/settings.ts';
import { acr } from '../provider/acr.ts';

export interface FactorPolicy {
  required: boolean;
  /** The methods the client allows, in the order they are offered. */
  methods: FactorId[];
  rememberDays: number;
  forgotDeviceEmail: boolean;
  allowEnrolmentAtLogin: boolean;
  /** Methods that may be the whole sign-in instead of the password (`passkey`: with user verification). */
  passwordless: FactorId[];
}

/** The client's `mfa` block, or the defaults from the environment for a client without one. */
export function policyFor(client: ClientConfig | undefined, defaults: Settings['mfa']): FactorPolicy {
  const mfa = client?.mfa;
  return {
    required: mfa?.required ?? defaults.required,
    methods: mfa?.methods ?? defaults.methods,
    rememberDays: mfa?.remember_days ?? defaults.rememberDays,
    forgotDeviceEmail: mfa?.forgot_device_email ?? defaults.forgotDeviceEmail,
    allowEnrolmentAtLogin: mfa?.allow_enrolment_at_login ?? true,
    passwordless: mfa?.passwordless ?? [],
  };
}

/** A relying party asks for step-up with `acr_values` naming the second-factor class (or an essential acr claim). */
export function requestsSecondFactor(params: Record<string, unknown>): boolean {
  const values = typeof params.acr_values === 'string' ? params.acr_values.split(/\s+/) : [];
  if (values.includes(acr.mfa)) return true;
  if (typeof params.claims === 'string') {
    try {
      const claims = JSON.parse(params.claims) as { id_token?: { acr?: { essential?: boolean; value?: string; values?: string[] } } };
      const requested = claims.id_token?.acr;
      if (requested?.essential && (requested.value === acr.mfa || requested.values?.includes(acr.mfa))) return true;
    } catch {
      return false;
    }
  }
  return false;
}
