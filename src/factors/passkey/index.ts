import { accountName } from '../../accounts/accounts.ts';
import { heldAs } from '../shared/held-enrolments.ts';
import { CONTROL_CHARACTERS } from '../shared/labels.ts';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
  VerifiedAuthenticationResponse,
} from '@simplewebauthn/server';
import { generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse } from '../shared/webauthn.ts';
import { z } from 'zod';
import type { FactorChallenge, FactorEnrolment, User } from '../../generated/prisma/client.ts';
import { safeEqual } from '../../security/crypto.ts';
import type { ChallengeContext, FactorModule, StartOutcome, VerifyOutcome } from '../contract.ts';
import type { FactorDependencies } from '../deps.ts';
import { passkeyAmr, webauthnRelyingParty } from '../shared/relying-party.ts';
import { authenticationResponse, registrationResponse } from './responses.ts';

export const PASSKEY_FAMILY = 'passkey';
/** FactorChallenge.factor of a sign-in with a passkey, and of registering one. */
export const PASSKEY_CHALLENGE = 'passkey';
export const PASSKEY_ENROLMENT_CHALLENGE = 'passkey-enrolment';
/** How long the browser and the user have for one ceremony. */
export const PASSKEY_CHALLENGE_TTL_SECONDS = 5 * 60;
const LABEL_MAX = 60;

/** FactorEnrolment.data of a passkey (type `passkey`; the label is the user's name for it). */
export interface PasskeyData {
  credentialId: string;
  /** COSE public key, base64url. */
  publicKey: string;
  counter: number;
  transports: AuthenticatorTransport[];
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
  aaguid: string;
}

type Stored = FactorEnrolment & { data: PasskeyData };
/** A passkey whose signature checked out, and what the check says of it. */
type Checked = { stored: Stored; info: VerifiedAuthenticationResponse['authenticationInfo'] };

/** The opaque WebAuthn user handle: the 16 bytes of the user's id (no email, nothing personal). */
export function userHandle(user: Pick<User, 'id'>): Uint8Array<ArrayBuffer> {
  return new Uint8Array(Buffer.from(user.id.replace(/-/g, ''), 'hex'));
}

/** The user id a user handle names, if it is one of ours. */
function userIdOf(handle: string): string | undefined {
  const hex = Buffer.from(handle, 'base64url').toString('hex');
  if (hex.length !== 32) return undefined;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export type PasswordlessOutcome =
  | { status: 'verified'; user: User; amr: string[]; label: string }
  | { status: 'failed'; reason: 'wrong_code' | 'used' | 'expired' | 'locked' | 'user_not_verified'; retryAfterSeconds?: number };

/**
 * A passkey as the whole sign-in (for clients whose `mfa.passwordless` lists `passkey`): a discoverable
 * credential names its user. No user is known before, so the challenge travels sealed (bound to the
 * interaction, 5 minutes) in the page instead of a row, and is used once through a marker row.
 */
export interface PasswordlessPasskeys {
  start(uid: string): Promise<{ options: PublicKeyCredentialRequestOptionsJSON; token: string }>;
  verify(input: { uid: string; token: string; credential: unknown }): Promise<PasswordlessOutcome>;
}

export interface PasskeyModule extends FactorModule {
  readonly passwordless: PasswordlessPasskeys;
}

export function isPasskeyModule(module: FactorModule | undefined): module is PasskeyModule {
  return Boolean(module && module.id === 'passkey' && 'passwordless' in module);
}

const PASSWORDLESS_PURPOSE = 'passkey-passwordless';
const passwordlessToken = z.object({ challenge: z.string().min(16).max(200), exp: z.number().int() });

const cleanLabel = (label: string | undefined) => (label ?? '').replace(CONTROL_CHARACTERS, '').trim().slice(0, LABEL_MAX);

/** The check @simplewebauthn/server runs on the challenge a ceremony answered: the one stored for it. */
const expectedChallenge = (row: Pick<FactorChallenge, 'data'>) => {
  const stored = (row.data as { webauthn?: unknown }).webauthn;
  return (challenge: string) => typeof stored === 'string' && safeEqual(challenge, stored);
};

async function checkRegistration(rp: () => { id: string; origins: string[] }, row: FactorChallenge, response: RegistrationResponseJSON | undefined) {
  if (!response) return undefined;
  const { id, origins } = rp();
  try {
    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge: expectedChallenge(row),
      expectedOrigin: origins,
      expectedRPID: id,
      requireUserVerification: false,
    });
    return result.verified ? result.registrationInfo : undefined;
  } catch {
    return undefined;
  }
}

/** Keeps a registered passkey (named, or "Passkey n"); undefined when the credential belongs to an account already. */
async function saveRegistration(
  prisma: FactorDependencies['prisma'],
  userId: string,
  registered: NonNullable<Awaited<ReturnType<typeof checkRegistration>>>,
  requestedLabel: string | undefined,
): Promise<string | undefined> {
  const credentialId = registered.credential.id;
  const data: PasskeyData = {
    credentialId,
    publicKey: Buffer.from(registered.credential.publicKey).toString('base64url'),
    counter: registered.credential.counter,
    transports: (registered.credential.transports ?? []) as AuthenticatorTransport[],
    deviceType: registered.credentialDeviceType,
    backedUp: registered.credentialBackedUp,
    aaguid: registered.aaguid,
  };
  return prisma.$transaction(async (tx) => {
    // A credential belongs to one account (browsers exclude known ones; this is the server's word).
    const taken = await tx.factorEnrolment.count({ where: { type: 'passkey', data: { path: ['credentialId'], equals: credentialId } } });
    if (taken > 0) return undefined;
    const existing = await tx.factorEnrolment.count({ where: { userId, type: 'passkey', confirmed: true } });
    const label = cleanLabel(requestedLabel) || `Passkey ${existing + 1}`;
    await tx.factorEnrolment.create({
      data: { userId, type: 'passkey', label, position: 0, confirmed: true, data: data as object, lastUsedAt: new Date() },
    });
    return label;
  });
}

/** A user's registered passkeys, in their order, and one of them by its credential id. */
function storedPasskeys(prisma: FactorDependencies['prisma']) {
  const passkeys = async (user: Pick<User, 'id'>) =>
    (await prisma.factorEnrolment.findMany({
      where: { userId: user.id, type: 'passkey', confirmed: true },
      orderBy: [{ position: 'asc' }, { createdAt: 'desc' }],
    })) as Stored[];
  const passkeyOf = async (userId: string, credentialId: string) =>
    (await prisma.factorEnrolment.findFirst({
      where: { userId, type: 'passkey', confirmed: true, data: { path: ['credentialId'], equals: credentialId } },
    })) as Stored | null;
  return { passkeys, passkeyOf };
}

/** The options of a registration ceremony: this user, and the passkeys they have already (excluded). */
function registrationOptions(rp: { id: string; name: string }, user: User, existing: Stored[]) {
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: accountName(user),
    userDisplayName: user.name ?? accountName(user),
    userID: userHandle(user),
    attestationType: 'none',
    timeout: PASSKEY_CHALLENGE_TTL_SECONDS * 1000,
    excludeCredentials: existing.map((p) => ({ id: p.data.credentialId, transports: p.data.transports })),
    authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
  });
}

/** "Sign in with a passkey" (no password first): the ceremony's challenge travels sealed, used once. */
function passwordlessPasskeys(
  deps: FactorDependencies,
  rp: () => { id: string },
  checkAssertion: (
    ctx: Pick<ChallengeContext, 'user'>,
    row: Pick<FactorChallenge, 'data'>,
    response: AuthenticationResponseJSON | undefined,
  ) => Promise<Checked | undefined>,
  recordUse: (row: Stored, use: { newCounter: number; credentialBackedUp: boolean; credentialDeviceType: string }) => Promise<boolean>,
): PasswordlessPasskeys {
  const { prisma, box, lock } = deps;
  return {
    start: async (uid) => {
      const options = await generateAuthenticationOptions({ rpID: rp().id, userVerification: 'required', timeout: PASSKEY_CHALLENGE_TTL_SECONDS * 1000 });
      const claims = { challenge: options.challenge, exp: Date.now() + PASSKEY_CHALLENGE_TTL_SECONDS * 1000 };
      return { options, token: Buffer.from(box.seal(PASSWORDLESS_PURPOSE, JSON.stringify(claims), uid)).toString('base64url') };
    },
    verify: async ({ uid, token, credential }) => {
      let claims: z.infer<typeof passwordlessToken>;
      try {
        claims = passwordlessToken.parse(JSON.parse(box.open(PASSWORDLESS_PURPOSE, Buffer.from(token, 'base64url'), uid).toString('utf8')));
      } catch {
        return { status: 'failed', reason: 'expired' };
      }
      if (claims.exp <= Date.now()) return { status: 'failed', reason: 'expired' };
      const response = authenticationResponse(credential);
      const userId = response?.response.userHandle ? userIdOf(response.response.userHandle) : undefined;
      const user = userId ? await prisma.user.findUnique({ where: { id: userId } }) : null;
      if (!response || !user || user.status !== 'active') return { status: 'failed', reason: 'wrong_code' };
      // A guess at this user's passkey counts against their lock, as in the second step.
      const judged = await lock.judge(user.id, PASSKEY_FAMILY, async () => {
        const checked = await checkAssertion({ user }, { data: { webauthn: claims.challenge } }, response);
        return { value: checked, verdict: checked ? ('right' as const) : ('wrong' as const) };
      });
      if (judged.locked) return { status: 'failed', reason: 'locked', retryAfterSeconds: judged.retryAfterSeconds };
      const checked = judged.value;
      if (!checked) {
        if (judged.attemptsLeft > 0) return { status: 'failed', reason: 'wrong_code' };
        const check = await lock.check(user.id, PASSKEY_FAMILY);
        return { status: 'failed', reason: 'locked', retryAfterSeconds: check.locked ? check.retryAfterSeconds : 1 };
      }
      // A valid signature is no guess; but without user verification a passkey is one factor, not a sign-in of its own.
      if (!checked.info.userVerified) return { status: 'failed', reason: 'user_not_verified' };
      // Used once: the first to insert the challenge's marker wins (expired markers are swept).
      const first = await prisma.$executeRaw`
        INSERT INTO rate_limits (key, points, expire)
        VALUES (${`${PASSWORDLESS_PURPOSE}:${claims.challenge}`}, 1, ${new Date(claims.exp)})
        ON CONFLICT (key) DO NOTHING`;
      if (first !== 1) return { status: 'failed', reason: 'used' };
      if (!(await recordUse(checked.stored, checked.info))) return { status: 'failed', reason: 'used' };
      const { info, stored } = checked;
      return {
        status: 'verified',
        user,
        label: stored.label,
        amr: passkeyAmr({ deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp, userVerified: true }),
      };
    },
  };
}

/**
 * Passkeys and security keys (WebAuthn, through @simplewebauthn/server). A user may register several,
 * each named. Each ceremony has its own challenge (a FactorChallenge row bound to the user and the
 * sign-in, five minutes, consumed by one conditional UPDATE, so an assertion works once); failures
 * count against the user's failure lock like wrong codes. The signature counter and the backup flags
 * are kept per credential; a counter that does not advance (a cloned key) is refused.
 * amr: see passkeyAmr (`hwk` or `swk`, plus `user` when the authenticator verified the user).
 */
export function passkeyFactor(deps: FactorDependencies): PasskeyModule {
  const { prisma, challenges } = deps;
  const rp = () => webauthnRelyingParty(deps.settings);

  const { passkeys, passkeyOf } = storedPasskeys(prisma);

  /** Stores the ceremony's challenge (closing earlier open ones of this sign-in) and returns its id. */
  async function newChallenge(ctx: ChallengeContext, factor: string, webauthnChallenge: string): Promise<string> {
    return prisma.$transaction(async (tx) => {
      const { challenge } = await challenges.create(tx, ctx, { factor, ttlSeconds: PASSKEY_CHALLENGE_TTL_SECONDS });
      await tx.factorChallenge.update({ where: { id: challenge.id }, data: { data: { webauthn: webauthnChallenge } } });
      return challenge.id;
    });
  }

  /** Counter and backup state after a use; refused (false) when the counter did not advance meanwhile. */
  async function recordUse(row: Stored, use: { newCounter: number; credentialBackedUp: boolean; credentialDeviceType: string }): Promise<boolean> {
    const count = await prisma.$executeRaw`
      UPDATE factor_enrolments
         SET data = data || jsonb_build_object('counter', ${use.newCounter}::bigint, 'backedUp', ${use.credentialBackedUp}::boolean, 'deviceType', ${use.credentialDeviceType}::text),
             last_used_at = now()
       WHERE id = ${row.id}::uuid AND user_id = ${row.userId}::uuid AND type = 'passkey' AND confirmed = true
         AND (COALESCE((data->>'counter')::bigint, 0) < ${use.newCounter}::bigint
              OR (${use.newCounter}::bigint = 0 AND COALESCE((data->>'counter')::bigint, 0) = 0))`;
    return count === 1;
  }

  async function checkAssertion(
    ctx: Pick<ChallengeContext, 'user'>,
    row: Pick<FactorChallenge, 'data'>,
    response: AuthenticationResponseJSON | undefined,
  ): Promise<Checked | undefined> {
    if (!response) return undefined;
    const stored = await passkeyOf(ctx.user.id, response.id);
    if (!stored) return undefined;
    // A discoverable credential names its user: it must be this one.
    const handle = response.response.userHandle;
    if (handle && !safeEqual(handle, Buffer.from(userHandle(ctx.user)).toString('base64url'))) return undefined;
    const { id, origins } = rp();
    try {
      const result = await verifyAuthenticationResponse({
        response,
        expectedChallenge: expectedChallenge(row),
        expectedOrigin: origins,
        expectedRPID: id,
        credential: {
          id: stored.data.credentialId,
          publicKey: new Uint8Array(Buffer.from(stored.data.publicKey, 'base64url')),
          counter: Number(stored.data.counter ?? 0),
          transports: stored.data.transports,
        },
        requireUserVerification: false,
      });
      return result.verified ? { stored, info: result.authenticationInfo } : undefined;
    } catch {
      // Wrong signature, challenge, origin, RP ID, a counter gone backwards: all simply "not accepted".
      return undefined;
    }
  }

  const passwordless = passwordlessPasskeys(deps, rp, checkAssertion, recordUse);

  return {
    id: 'passkey',
    passwordless,
    channel: 'device',
    amr: ['hwk', 'swk', 'user'],
    kind: 'webauthn',
    ...heldAs(prisma, { type: 'passkey' }),
    targets: async () => [],
    maskTarget: (label) => label,

    enrol: {
      createsCredential: true,
      // One pseudo-target: another passkey can always be added.
      targets: async () => [{ id: 'new-passkey', masked: 'passkey' }],
      begin: async (ctx): Promise<StartOutcome> => {
        const options = await registrationOptions(rp(), ctx.user, await passkeys(ctx.user));
        const challengeId = await newChallenge(ctx, PASSKEY_ENROLMENT_CHALLENGE, options.challenge);
        return { status: 'started', challengeId, browser: { ...options } };
      },
      complete: async (ctx, input): Promise<VerifyOutcome> => {
        const response = registrationResponse(input.credential);
        let info: Awaited<ReturnType<typeof checkRegistration>>;
        const outcome = await challenges.verifyExternally(ctx, input.challengeId, PASSKEY_FAMILY, [PASSKEY_ENROLMENT_CHALLENGE], async (row) => {
          info = await checkRegistration(rp, row, response);
          return Boolean(info);
        });
        if (outcome.status !== 'verified' || !info) return outcome;
        const registered = info;
        const label = await saveRegistration(prisma, ctx.user.id, registered, input.label);
        if (!label) return { status: 'failed', reason: 'used' };
        return {
          status: 'verified',
          amr: passkeyAmr({ deviceType: registered.credentialDeviceType, backedUp: registered.credentialBackedUp, userVerified: registered.userVerified }),
          target: label,
        };
      },
    },

    start: async (ctx): Promise<StartOutcome> => {
      const mine = await passkeys(ctx.user);
      if (mine.length === 0) return { status: 'failed', reason: 'not_enrolled' };
      const options = await generateAuthenticationOptions({
        rpID: rp().id,
        allowCredentials: mine.map((p) => ({ id: p.data.credentialId, transports: p.data.transports })),
        userVerification: 'preferred',
        timeout: PASSKEY_CHALLENGE_TTL_SECONDS * 1000,
      });
      const challengeId = await newChallenge(ctx, PASSKEY_CHALLENGE, options.challenge);
      return { status: 'started', challengeId, browser: { ...options } };
    },

    verify: async (ctx, input): Promise<VerifyOutcome> => {
      const response = authenticationResponse(input.credential);
      let checked: Awaited<ReturnType<typeof checkAssertion>>;
      const outcome = await challenges.verifyExternally(ctx, input.challengeId, PASSKEY_FAMILY, [PASSKEY_CHALLENGE], async (row) => {
        checked = await checkAssertion(ctx, row, response);
        return Boolean(checked);
      });
      if (outcome.status !== 'verified' || !checked) return outcome;
      const { stored, info } = checked;
      // Of two assertions racing on one credential, or a clone's, only a rising counter passes.
      if (!(await recordUse(stored, info))) return { status: 'failed', reason: 'used' };
      return {
        status: 'verified',
        amr: passkeyAmr({ deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp, userVerified: info.userVerified }),
        target: stored.label,
      };
    },
  };
}
