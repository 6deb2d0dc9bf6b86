import type { RawSettings } from './settings.ts';

/** Settings that only make sense together (production needs a key, a transport its credentials, …). */
export function crossChecks(raw: RawSettings): string[] {
  const problems: string[] = [];
  if (raw.NODE_ENV === 'production' && !raw.NYCKEL_MASTER_KEY) problems.push('NYCKEL_MASTER_KEY: required when NODE_ENV=production');
  if (raw.NODE_ENV === 'production' && raw.NYCKEL_METRICS && !raw.NYCKEL_METRICS_TOKEN) {
    problems.push(
      'NYCKEL_METRICS_TOKEN: required when NODE_ENV=production and NYCKEL_METRICS=true (/metrics would answer anyone); set a scrape token, or NYCKEL_METRICS=false',
    );
  }
  if (raw.NODE_ENV === 'production' && raw.NYCKEL_MAIL_TRANSPORT === 'outbox') {
    problems.push('NYCKEL_MAIL_TRANSPORT: the dev outbox is refused when NODE_ENV=production; configure smtp or sendgrid');
  }
  if (raw.NYCKEL_SMS_TRANSPORT.startsWith('twilio') && (!raw.TWILIO_ACCOUNT_SID || !raw.TWILIO_AUTH_TOKEN)) {
    problems.push('TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN: required for the twilio SMS transports');
  }
  if (raw.NYCKEL_SMS_TRANSPORT === 'twilio' && !raw.TWILIO_FROM)
    problems.push('TWILIO_FROM: required for the twilio SMS transport (a number or a messaging service SID)');
  if (raw.NYCKEL_SMS_TRANSPORT === 'twilio-verify' && !raw.TWILIO_VERIFY_SERVICE_SID)
    problems.push('TWILIO_VERIFY_SERVICE_SID: required for the twilio-verify SMS transport');
  if (raw.NYCKEL_MAIL_TRANSPORT === 'smtp' && !raw.NYCKEL_SMTP_URL) problems.push('NYCKEL_SMTP_URL: required for the smtp transport');
  if (raw.NYCKEL_MAIL_TRANSPORT === 'sendgrid' && !raw.SENDGRID_API_KEY) problems.push('SENDGRID_API_KEY: required for the sendgrid transport');
  if (raw.NYCKEL_BANKID_URL && !raw.NYCKEL_BANKID_CA)
    problems.push("NYCKEL_BANKID_CA: required with NYCKEL_BANKID_URL (the CA of BankID's server certificate)");
  if (raw.NYCKEL_BANKID_URL && !raw.NYCKEL_BANKID_PFX && !(raw.NYCKEL_BANKID_CERT && raw.NYCKEL_BANKID_KEY)) {
    problems.push('NYCKEL_BANKID_PFX, or NYCKEL_BANKID_CERT and NYCKEL_BANKID_KEY: required with NYCKEL_BANKID_URL (the relying party certificate)');
  }
  return problems;
}

/** The second factors' and delivery providers' settings. */
export function providerSettings(raw: RawSettings) {
  return {
    sms: {
      transport: raw.NYCKEL_SMS_TRANSPORT,
      twilio: {
        accountSid: raw.TWILIO_ACCOUNT_SID,
        authToken: raw.TWILIO_AUTH_TOKEN,
        from: raw.TWILIO_FROM,
        verifyServiceSid: raw.TWILIO_VERIFY_SERVICE_SID,
      },
      codeTtl: raw.NYCKEL_SMS_CODE_TTL,
      allowedCountries: raw.NYCKEL_SMS_ALLOWED_COUNTRIES,
      budgets: {
        perNumber: raw.NYCKEL_SMS_BUDGET_PER_NUMBER,
        perAccount: raw.NYCKEL_SMS_BUDGET_PER_ACCOUNT,
        perIp: raw.NYCKEL_SMS_BUDGET_PER_IP,
        global: raw.NYCKEL_SMS_BUDGET_GLOBAL,
      },
      timeoutMs: raw.NYCKEL_SMS_TIMEOUT_MS,
    },
    totp: { issuer: raw.NYCKEL_TOTP_ISSUER },
    recoveryCodes: raw.NYCKEL_RECOVERY_CODES,
    bankid: raw.NYCKEL_BANKID_URL
      ? {
          url: raw.NYCKEL_BANKID_URL.replace(/\/$/, ''),
          pfx: raw.NYCKEL_BANKID_PFX,
          passphrase: raw.NYCKEL_BANKID_PFX_PASSPHRASE,
          cert: raw.NYCKEL_BANKID_CERT,
          key: raw.NYCKEL_BANKID_KEY,
          ca: raw.NYCKEL_BANKID_CA!,
          timeoutMs: raw.NYCKEL_BANKID_TIMEOUT_MS,
          requirePin: raw.NYCKEL_BANKID_REQUIRE_PIN,
          logoFile: raw.NYCKEL_BANKID_LOGO_FILE,
        }
      : undefined,
    webauthn: { rpId: raw.NYCKEL_WEBAUTHN_RP_ID, origins: raw.NYCKEL_WEBAUTHN_ORIGINS, rpName: raw.NYCKEL_WEBAUTHN_RP_NAME },
    push: {
      ttlSeconds: raw.NYCKEL_PUSH_TTL_SECONDS,
      maxPerWindow: raw.NYCKEL_PUSH_MAX_PER_WINDOW,
      windowSeconds: raw.NYCKEL_PUSH_WINDOW_SECONDS,
      denyCooldownSeconds: raw.NYCKEL_PUSH_DENY_COOLDOWN_SECONDS,
      allowHttpEndpoints: raw.NYCKEL_PUSH_ALLOW_HTTP_ENDPOINTS && raw.NODE_ENV !== 'production',
      vapid: { publicKey: raw.NYCKEL_VAPID_PUBLIC_KEY, privateKey: raw.NYCKEL_VAPID_PRIVATE_KEY, subject: raw.NYCKEL_VAPID_SUBJECT },
    },
    mail: {
      transport: raw.NYCKEL_MAIL_TRANSPORT,
      budgets: { perAddress: raw.NYCKEL_MAIL_BUDGET_PER_ADDRESS, perAccount: raw.NYCKEL_MAIL_BUDGET_PER_ACCOUNT, perIp: raw.NYCKEL_MAIL_BUDGET_PER_IP },
      from: raw.NYCKEL_MAIL_FROM,
      smtpUrl: raw.NYCKEL_SMTP_URL,
      sendgridApiKey: raw.SENDGRID_API_KEY,
      sendgridBaseUrl: raw.NYCKEL_SENDGRID_BASE_URL.replace(/\/$/, ''),
      timeoutMs: raw.NYCKEL_MAIL_TIMEOUT_MS,
    },
  };
}
