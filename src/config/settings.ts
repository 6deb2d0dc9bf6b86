import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { brandSettings, brandSettingsShape, DEFAULT_BRAND_NAME, type BrandSettings } from './brand-settings.ts';
import { crossChecks, providerSettings } from './settings-parts.ts';

/**
 * Every setting Nyckel reads from the environment, with its default. `.env.example` documents each one;
 * keep the two in step (test/settings.test.ts checks that every key here is documented there).
 */
const booleanish = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((value) => value === 'true' || value === '1' || value === 'yes');

const seconds = z.coerce.number().int().positive();

export const settingsSchema = z
  .object({
    NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
    PORT: z.coerce.number().int().min(0).max(65535).default(3000),
    HOST: z.string().min(1).default('0.0.0.0'),
    ISSUER: z.url().optional(),
    NYCKEL_DATA_DIR: z.string().min(1).default('./data'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// or postgresql:// URL')
      .optional(),
    REDIS_URL: z
      .string()
      .regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL')
      .optional(),
    NYCKEL_REDIS_PREFIX: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be 1 to 64 letters, digits or _ . : -')
      .default('nyckel:'),
    NYCKEL_CLIENTS: z.string().min(1).default('config/clients.yaml'),
    NYCKEL_MASTER_KEY: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'must be 32 random bytes in base64url (43 characters); make one with `npx nyckel keys master`')
      .optional(),
    NYCKEL_TRUST_PROXY: booleanish.default(false),
    NYCKEL_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    NYCKEL_DEMO: booleanish.optional(),
    ...brandSettingsShape,
    NYCKEL_DEFAULT_LOCALE: z.enum(['sv', 'da', 'en']).default('en'),
    NYCKEL_MAX_BODY_BYTES: z.coerce
      .number()
      .int()
      .min(1024)
      .max(10 * 1024 * 1024)
      .default(64 * 1024),
    NYCKEL_SESSION_TTL: seconds.default(14 * 24 * 3600),
    NYCKEL_INTERACTION_TTL: seconds.default(60 * 60),
    NYCKEL_ACCESS_TOKEN_TTL: seconds.default(3600),
    NYCKEL_ID_TOKEN_TTL: seconds.default(3600),
    NYCKEL_REFRESH_TOKEN_TTL: seconds.default(30 * 24 * 3600),
    NYCKEL_AUTHORIZATION_CODE_TTL: seconds.default(60),
    NYCKEL_ADMIN_TOKEN_TTL: z.coerce.number().int().min(60).max(3600).default(600),
    NYCKEL_LOGIN_FAILURES_PER_ACCOUNT: z.coerce.number().int().positive().default(10),
    NYCKEL_LOGIN_FAILURES_PER_IP: z.coerce.number().int().positive().default(100),
    NYCKEL_LOGIN_FAILURE_WINDOW: seconds.default(15 * 60),
    NYCKEL_DEVICE_CODE_TTL: z.coerce.number().int().min(60).max(3600).default(600),
    NYCKEL_DEVICE_CODE_GUESSES_PER_IP: z.coerce.number().int().positive().default(10),
    NYCKEL_SWEEP_INTERVAL: seconds.default(60),
    NYCKEL_SHUTDOWN_GRACE_SECONDS: z.coerce.number().int().min(0).max(600).default(10),
    NYCKEL_METRICS: booleanish.optional(),
    NYCKEL_METRICS_TOKEN: z
      .string()
      .regex(/^[\x21-\x7e]{16,200}$/, 'must be 16 to 200 printable characters without spaces')
      .optional(),
    NYCKEL_ARGON2_MEMORY_KIB: z.coerce.number().int().min(8192).default(19456),
    NYCKEL_ARGON2_TIME_COST: z.coerce.number().int().min(1).default(2),
    NYCKEL_ARGON2_MAX_CONCURRENT: z.coerce.number().int().min(1).max(1024).optional(),
    NYCKEL_MFA_REQUIRED: booleanish.default(false),
    NYCKEL_MFA_METHODS: z
      .string()
      .default('')
      // Empty: every installed method. The ids are checked against the registry at start (src/factors/installed-methods.ts).
      .transform((list): string[] =>
        list
          .split(',')
          .map((id) => id.trim())
          .filter(Boolean),
      ),
    NYCKEL_MAX_CONTACT_EMAILS: z.coerce.number().int().min(1).max(50).default(3),
    NYCKEL_SIGN_IN_NAME: z.enum(['username_or_email', 'username', 'email']).default('username_or_email'),
    NYCKEL_PASSWORD_RESET: booleanish.default(true),
    NYCKEL_PASSWORD_RESET_TTL: seconds.default(15 * 60),
    NYCKEL_INVITATION_TTL: seconds.default(7 * 24 * 3600),
    NYCKEL_ACCOUNT_RECENT_AUTH_MINUTES: z.coerce.number().int().min(1).max(120).default(10),
    NYCKEL_ACCOUNT_DELETION_GRACE_DAYS: z.coerce.number().int().min(0).max(365).default(14),
    NYCKEL_ACCOUNT_SESSION_MINUTES: z.coerce
      .number()
      .int()
      .min(5)
      .max(24 * 60)
      .default(30),
    NYCKEL_REMEMBER_DAYS: z.coerce.number().int().min(0).max(365).default(20),
    NYCKEL_FORGOT_DEVICE_EMAIL: booleanish.default(false),
    NYCKEL_EMAIL_LINK_TTL: seconds.default(30 * 60),
    NYCKEL_EMAIL_CODE_TTL: seconds.default(10 * 60),
    NYCKEL_CODE_RESEND_COOLDOWN: z.coerce.number().int().min(0).default(30),
    NYCKEL_MAIL_BUDGET_PER_ADDRESS: z.coerce.number().int().min(1).default(10),
    NYCKEL_MAIL_BUDGET_PER_ACCOUNT: z.coerce.number().int().min(1).default(20),
    NYCKEL_MAIL_BUDGET_PER_IP: z.coerce.number().int().min(1).default(50),
    NYCKEL_FACTOR_MAX_FAILURES: z.coerce.number().int().min(1).max(100).default(5),
    NYCKEL_FACTOR_LOCK_SECONDS: seconds.default(15 * 60),
    NYCKEL_SMS_TRANSPORT: z.enum(['outbox', 'twilio', 'twilio-verify']).optional(),
    TWILIO_ACCOUNT_SID: z
      .string()
      .regex(/^AC[0-9a-fA-F]{32}$/, 'must be an account SID (AC followed by 32 hex digits)')
      .optional(),
    TWILIO_AUTH_TOKEN: z.string().min(1).optional(),
    TWILIO_FROM: z.string().min(1).optional(),
    TWILIO_VERIFY_SERVICE_SID: z
      .string()
      .regex(/^VA[0-9a-fA-F]{32}$/, 'must be a Verify service SID (VA…)')
      .optional(),
    NYCKEL_SMS_CODE_TTL: seconds.default(5 * 60),
    NYCKEL_SMS_ALLOWED_COUNTRIES: z
      .string()
      .default('SE,DK,NO,FI')
      .transform((list) =>
        list
          .split(',')
          .map((c) => c.trim().toUpperCase())
          .filter(Boolean),
      )
      .pipe(z.array(z.string().regex(/^[A-Z]{2}$/, 'must be ISO 3166 two-letter country codes, comma-separated'))),
    NYCKEL_SMS_BUDGET_PER_NUMBER: z.coerce.number().int().min(1).default(5),
    NYCKEL_SMS_BUDGET_PER_ACCOUNT: z.coerce.number().int().min(1).default(10),
    NYCKEL_SMS_BUDGET_PER_IP: z.coerce.number().int().min(1).default(20),
    NYCKEL_SMS_BUDGET_GLOBAL: z.coerce.number().int().min(1).default(1000),
    NYCKEL_SMS_TIMEOUT_MS: z.coerce.number().int().min(500).max(60_000).default(10_000),
    NYCKEL_TOTP_ISSUER: z.string().min(1).max(64).optional(),
    NYCKEL_RECOVERY_CODES: z.coerce.number().int().min(5).max(20).default(10),
    NYCKEL_BANKID_URL: z
      .url()
      .regex(/^https:\/\//, 'must be an https:// URL, e.g. https://appapi2.test.bankid.com/rp/v6.0')
      .optional(),
    NYCKEL_BANKID_PFX: z.string().min(1).optional(),
    NYCKEL_BANKID_PFX_PASSPHRASE: z.string().optional(),
    NYCKEL_BANKID_CERT: z.string().min(1).optional(),
    NYCKEL_BANKID_KEY: z.string().min(1).optional(),
    NYCKEL_BANKID_CA: z.string().min(1).optional(),
    NYCKEL_BANKID_TIMEOUT_MS: z.coerce.number().int().min(100).max(60_000).default(5000),
    NYCKEL_BANKID_REQUIRE_PIN: booleanish.default(false),
    NYCKEL_BANKID_LOGO_FILE: z.string().min(1).optional(),
    NYCKEL_WEBAUTHN_RP_ID: z
      .string()
      .regex(
        /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i,
        'must be a domain name (no scheme, port or path), e.g. login.example.se',
      )
      .transform((host) => host.toLowerCase())
      .optional(),
    NYCKEL_WEBAUTHN_ORIGINS: z
      .string()
      .transform((list) =>
        list
          .split(',')
          .map((o) => o.trim().replace(/\/$/, ''))
          .filter(Boolean),
      )
      .pipe(z.array(z.string().regex(/^https?:\/\/[^/?#\s]+$/, 'must be origins (scheme://host[:port]), comma-separated')).min(1))
      .optional(),
    NYCKEL_WEBAUTHN_RP_NAME: z.string().min(1).max(64).optional(),
    NYCKEL_PUSH_TTL_SECONDS: z.coerce.number().int().min(5).max(300).default(25),
    NYCKEL_PUSH_MAX_PER_WINDOW: z.coerce.number().int().min(1).max(100).default(5),
    NYCKEL_PUSH_WINDOW_SECONDS: z.coerce.number().int().min(10).max(86_400).default(600),
    NYCKEL_PUSH_DENY_COOLDOWN_SECONDS: z.coerce.number().int().min(0).max(86_400).default(300),
    NYCKEL_PUSH_ALLOW_HTTP_ENDPOINTS: booleanish.default(false),
    NYCKEL_VAPID_PUBLIC_KEY: z
      .string()
      .regex(/^[A-Za-z0-9_-]{87}$/, 'must be a base64url P-256 public key (web-push generate-vapid-keys)')
      .optional(),
    NYCKEL_VAPID_PRIVATE_KEY: z
      .string()
      .regex(/^[A-Za-z0-9_-]{43}$/, 'must be a base64url P-256 private key (web-push generate-vapid-keys)')
      .optional(),
    NYCKEL_VAPID_SUBJECT: z
      .string()
      .regex(/^(mailto:|https:\/\/)\S+$/, 'must be a mailto: address or an https:// URL')
      .optional(),
    NYCKEL_MAIL_TRANSPORT: z.enum(['outbox', 'smtp', 'sendgrid']).optional(),
    NYCKEL_MAIL_FROM: z.string().min(3).default('Nyckel <no-reply@nyckel.localhost>'),
    NYCKEL_SMTP_URL: z
      .string()
      .regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL')
      .optional(),
    SENDGRID_API_KEY: z.string().min(1).optional(),
    NYCKEL_SENDGRID_BASE_URL: z.url().default('https://api.sendgrid.com'),
    NYCKEL_MAIL_TIMEOUT_MS: z.coerce.number().int().min(500).max(120_000).default(30_000),
  })
  .transform((env) => ({
    ...env,
    NYCKEL_DEMO: env.NYCKEL_DEMO ?? env.NODE_ENV !== 'production',
    // The name in authenticator apps and passkey prompts follows the service's name unless set apart.
    NYCKEL_TOTP_ISSUER: env.NYCKEL_TOTP_ISSUER ?? env.NYCKEL_BRAND_NAME ?? DEFAULT_BRAND_NAME,
    NYCKEL_WEBAUTHN_RP_NAME: env.NYCKEL_WEBAUTHN_RP_NAME ?? env.NYCKEL_BRAND_NAME ?? DEFAULT_BRAND_NAME,
    // In production /metrics is served only behind a token: without one it is off (asked for explicitly, start-up refuses).
    NYCKEL_METRICS: env.NYCKEL_METRICS ?? (env.NODE_ENV !== 'production' || env.NYCKEL_METRICS_TOKEN !== undefined),
    NYCKEL_MAIL_TRANSPORT: env.NYCKEL_MAIL_TRANSPORT ?? (env.SENDGRID_API_KEY ? 'sendgrid' : env.NYCKEL_SMTP_URL ? 'smtp' : 'outbox'),
    NYCKEL_SMS_TRANSPORT: env.NYCKEL_SMS_TRANSPORT ?? (env.TWILIO_VERIFY_SERVICE_SID ? 'twilio-verify' : env.TWILIO_ACCOUNT_SID ? 'twilio' : 'outbox'),
  }));

export type RawSettings = z.infer<typeof settingsSchema>;

export interface Settings {
  env: RawSettings['NODE_ENV'];
  production: boolean;
  port: number;
  host: string;
  issuer: string;
  /** False when ISSUER was not set: the issuer then follows the port actually bound. */
  issuerExplicit: boolean;
  dataDir: string;
  databaseUrl?: string;
  /** Shared short-lived state of several nodes; without it everything is in the database. */
  redis?: { url: string; prefix: string };
  clientsFile: string;
  masterKey?: string;
  trustProxy: boolean;
  logLevel: RawSettings['NYCKEL_LOG_LEVEL'];
  demo: boolean;
  defaultLocale: 'sv' | 'da' | 'en';
  /** The installation's name, logo, colours and support contact (src/branding/). */
  brand: BrandSettings;
  maxBodyBytes: number;
  ttl: {
    session: number;
    interaction: number;
    accessToken: number;
    idToken: number;
    refreshToken: number;
    authorizationCode: number;
    /** Access tokens of the admin API (opaque, revocable). */
    adminToken: number;
    /** A device sign-in's device and user codes (RFC 8628). */
    deviceCode: number;
  };
  loginThrottle: { perAccount: number; perIp: number; windowSeconds: number };
  /** Device sign-in: wrong user codes typed per IP address (in the login failure window); the codes' lifetime. */
  deviceFlow: { perIp: number; windowSeconds: number; codeTtlSeconds: number };
  /** How long requests in flight may take to finish after a shutdown signal. */
  shutdownGraceSeconds: number;
  /** GET /metrics (Prometheus); with a token, only for `Authorization: Bearer <token>` (required in production). */
  metrics: { enabled: boolean; token?: string };
  sweepIntervalSeconds: number;
  argon2: { memoryCost: number; timeCost: number; maxConcurrent: number };
  /** Defaults for clients whose entry in the clients file has no `mfa` block. */
  mfa: { required: boolean; methods: string[] /* factor ids */; rememberDays: number; forgotDeviceEmail: boolean };
  /** Contact addresses a user may have (IDEP.WEB allows three). */
  maxContactEmails: number;
  /** What the sign-in form takes (a client may narrow it), and "Forgot your password?" (a code by mail, its lifetime). */
  signIn: { names: 'username_or_email' | 'username' | 'email'; passwordReset: boolean; passwordResetTtl: number; invitationTtl: number };
  /** The account pages: how recent a sign-in must be before a change, and how long a page session lasts idle. */
  account: { recentAuthMinutes: number; sessionMinutes: number; deletionGraceDays: number };
  factors: {
    emailLinkTtl: number;
    emailCodeTtl: number;
    /** Seconds between two sends of a code or link to one target (start, resend, enrolment, fallback), per account. */
    resendCooldownSeconds: number;
    maxFailures: number;
    lockSeconds: number;
  };
  sms: {
    /** outbox: kept in the deliveries table (dev); twilio: Programmable Messaging with Nyckel's own code; twilio-verify: Twilio Verify. */
    transport: 'outbox' | 'twilio' | 'twilio-verify';
    twilio: { accountSid?: string; authToken?: string; from?: string; verifyServiceSid?: string };
    codeTtl: number;
    allowedCountries: string[];
    /** Sends allowed per hour, checked before the provider is called. */
    budgets: { perNumber: number; perAccount: number; perIp: number; global: number };
    /** How long a send (or a Verify start or check) may wait for the provider before it counts as failed. */
    timeoutMs: number;
  };
  totp: { issuer: string };
  recoveryCodes: number;
  /** BankID's RP API; undefined when not configured (the method is then not offered). Paths are files. */
  bankid?: {
    url: string;
    pfx?: string;
    passphrase?: string;
    cert?: string;
    key?: string;
    ca: string;
    timeoutMs: number;
    requirePin: boolean;
    logoFile?: string;
  };
  /** Passkeys: unset `rpId`/`origins` follow the issuer in force (its hostname and origin), see webauthnRelyingParty. */
  webauthn: { rpId?: string; origins?: string[]; rpName: string };
  /** Push approval (Nyckel Authenticator): request lifetime, caps against push fatigue, VAPID. */
  push: {
    ttlSeconds: number;
    maxPerWindow: number;
    windowSeconds: number;
    denyCooldownSeconds: number;
    /** http:// push endpoints on loopback (tests' fake push service); never in production. */
    allowHttpEndpoints: boolean;
    vapid: { publicKey?: string; privateKey?: string; subject?: string };
  };
  mail: {
    transport: 'outbox' | 'smtp' | 'sendgrid';
    /** Mails of a code or link allowed per hour, checked before anything is queued. */
    budgets: { perAddress: number; perAccount: number; perIp: number };
    from: string;
    smtpUrl?: string;
    sendgridApiKey?: string;
    sendgridBaseUrl: string;
    /** How long one send may wait for the SMTP server or SendGrid before it fails and is retried later. */
    timeoutMs: number;
  };
}

export class SettingsError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration in the environment:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export function loadSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const relevant = Object.fromEntries(Object.keys(settingsSchema.in.shape).map((key) => [key, env[key] === '' ? undefined : env[key]]));
  const parsed = settingsSchema.safeParse(relevant);
  if (!parsed.success) {
    throw new SettingsError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const raw = parsed.data;
  const problems = crossChecks(raw);
  if (problems.length) throw new SettingsError(problems);
  return {
    env: raw.NODE_ENV,
    production: raw.NODE_ENV === 'production',
    port: raw.PORT,
    host: raw.HOST,
    issuer: (raw.ISSUER ?? `http://localhost:${raw.PORT}`).replace(/\/$/, ''),
    issuerExplicit: raw.ISSUER !== undefined,
    dataDir: path.resolve(raw.NYCKEL_DATA_DIR),
    databaseUrl: raw.DATABASE_URL,
    redis: raw.REDIS_URL ? { url: raw.REDIS_URL, prefix: raw.NYCKEL_REDIS_PREFIX } : undefined,
    clientsFile: path.resolve(raw.NYCKEL_CLIENTS),
    masterKey: raw.NYCKEL_MASTER_KEY,
    trustProxy: raw.NYCKEL_TRUST_PROXY,
    logLevel: raw.NYCKEL_LOG_LEVEL,
    demo: raw.NYCKEL_DEMO,
    defaultLocale: raw.NYCKEL_DEFAULT_LOCALE,
    ...brandSettings(raw),
    maxBodyBytes: raw.NYCKEL_MAX_BODY_BYTES,
    ttl: {
      session: raw.NYCKEL_SESSION_TTL,
      interaction: raw.NYCKEL_INTERACTION_TTL,
      accessToken: raw.NYCKEL_ACCESS_TOKEN_TTL,
      idToken: raw.NYCKEL_ID_TOKEN_TTL,
      refreshToken: raw.NYCKEL_REFRESH_TOKEN_TTL,
      authorizationCode: raw.NYCKEL_AUTHORIZATION_CODE_TTL,
      adminToken: raw.NYCKEL_ADMIN_TOKEN_TTL,
      deviceCode: raw.NYCKEL_DEVICE_CODE_TTL,
    },
    deviceFlow: { perIp: raw.NYCKEL_DEVICE_CODE_GUESSES_PER_IP, windowSeconds: raw.NYCKEL_LOGIN_FAILURE_WINDOW, codeTtlSeconds: raw.NYCKEL_DEVICE_CODE_TTL },
    loginThrottle: {
      perAccount: raw.NYCKEL_LOGIN_FAILURES_PER_ACCOUNT,
      perIp: raw.NYCKEL_LOGIN_FAILURES_PER_IP,
      windowSeconds: raw.NYCKEL_LOGIN_FAILURE_WINDOW,
    },
    sweepIntervalSeconds: raw.NYCKEL_SWEEP_INTERVAL,
    shutdownGraceSeconds: raw.NYCKEL_SHUTDOWN_GRACE_SECONDS,
    metrics: { enabled: raw.NYCKEL_METRICS, token: raw.NYCKEL_METRICS_TOKEN },
    argon2: {
      memoryCost: raw.NYCKEL_ARGON2_MEMORY_KIB,
      timeCost: raw.NYCKEL_ARGON2_TIME_COST,
      maxConcurrent: raw.NYCKEL_ARGON2_MAX_CONCURRENT ?? os.availableParallelism(),
    },
    mfa: {
      required: raw.NYCKEL_MFA_REQUIRED,
      methods: raw.NYCKEL_MFA_METHODS,
      rememberDays: raw.NYCKEL_REMEMBER_DAYS,
      forgotDeviceEmail: raw.NYCKEL_FORGOT_DEVICE_EMAIL,
    },
    maxContactEmails: raw.NYCKEL_MAX_CONTACT_EMAILS,
    signIn: {
      names: raw.NYCKEL_SIGN_IN_NAME,
      passwordReset: raw.NYCKEL_PASSWORD_RESET,
      passwordResetTtl: raw.NYCKEL_PASSWORD_RESET_TTL,
      invitationTtl: raw.NYCKEL_INVITATION_TTL,
    },
    account: {
      recentAuthMinutes: raw.NYCKEL_ACCOUNT_RECENT_AUTH_MINUTES,
      sessionMinutes: raw.NYCKEL_ACCOUNT_SESSION_MINUTES,
      deletionGraceDays: raw.NYCKEL_ACCOUNT_DELETION_GRACE_DAYS,
    },
    factors: {
      emailLinkTtl: raw.NYCKEL_EMAIL_LINK_TTL,
      emailCodeTtl: raw.NYCKEL_EMAIL_CODE_TTL,
      resendCooldownSeconds: raw.NYCKEL_CODE_RESEND_COOLDOWN,
      maxFailures: raw.NYCKEL_FACTOR_MAX_FAILURES,
      lockSeconds: raw.NYCKEL_FACTOR_LOCK_SECONDS,
    },
    ...providerSettings(raw),
  };
}
