import type { FactorId } from '../clients/clients-file.ts';
import type { ClientDirectory } from '../clients/directory.ts';
import type { Settings } from '../config/settings.ts';
import type { User } from '../generated/prisma/client.ts';
import type { PrismaClient } from '../storage/db.ts';
import { driverOf } from '../storage/sql.ts';
import { heldRows, holds, type HeldRow } from './shared/held-enrolments.ts';
import type { FactorModule } from './contract.ts';
import { policyFor, type FactorPolicy } from './policy.ts';

/**
 * The second-factor methods of a user for a client: which are offered, which can be enrolled now,
 * and in which order (the sign-in records themselves are in sign-ins.ts). Whether a sign-in needs a
 * second factor, and what it may enrol, is asked of SecondFactorPolicy (policy.ts), which uses these.
 */
export class FactorEngine {
  constructor(
    private readonly prisma: PrismaClient,
    readonly modules: Map<FactorId, FactorModule>,
    private readonly clients: ClientDirectory,
    private readonly settings: Settings,
  ) {}

  policy(clientId: string): FactorPolicy {
    return policyFor(this.clients.get(clientId), this.settings.mfa);
  }

  /** Whether the installation or some client requires a second factor. */
  secondFactorRequiredSomewhere(): boolean {
    return this.settings.mfa.required || this.clients.file.clients.some((client) => policyFor(client, this.settings.mfa).required);
  }

  /** The methods this user can use for this client: allowed by the policy, enrolled, in policy order (`held`: the user's rows, if read already). */
  async offered(user: User, clientId: string, held?: readonly HeldRow[]): Promise<FactorModule[]> {
    return this.heldAmong(user, this.usableMethods(clientId), held);
  }

  /**
   * Those of `candidates` the user holds, the user's primary first. The user's enrolment rows are read
   * once: for the methods held as rows (`heldAs`), and for the order; other methods are asked.
   */
  private async heldAmong(user: User, candidates: readonly FactorModule[], known?: readonly HeldRow[]): Promise<FactorModule[]> {
    const rows = known ?? (await heldRows(driverOf(this.prisma), user.id));
    const held = await Promise.all(candidates.map(async (m) => ((m.heldAs ? holds(rows, m.heldAs) : await m.isEnrolled(user)) ? m : undefined)));
    return this.primaryFirst(
      user,
      held.filter((m): m is FactorModule => Boolean(m)),
      rows,
    );
  }

  /**
   * The client's methods, and the backup methods (recovery codes) of a device that can be lost: the
   * codes a user got with an app or a passkey work wherever that app or passkey does, unless the
   * client says otherwise (`recovery_codes_fallback: false`).
   */
  usableMethods(clientId: string): FactorModule[] {
    const policy = this.policy(clientId);
    const listed = policy.methods.map((id) => this.modules.get(id)).filter((m): m is FactorModule => Boolean(m));
    if (!policy.recoveryCodesFallback || !listed.some((m) => m.channel === 'app' || m.channel === 'device')) return listed;
    const backups = [...this.modules.values()].filter((m) => m.channel === 'backup' && !listed.includes(m));
    return [...listed, ...backups];
  }

  /**
   * Methods the policy allows that the user could enrol now (e.g. a registered address to verify).
   * `proven`: this sign-in has already passed a second factor the user holds.
   */
  async enrollable(user: User, clientId: string, proven = false): Promise<FactorModule[]> {
    const policy = this.policy(clientId);
    const candidates = policy.methods.map((id) => this.modules.get(id)).filter((m): m is FactorModule => Boolean(m));
    const withTargets = await Promise.all(candidates.map(async (m) => ((await m.enrol.targets(user)).length > 0 ? m : undefined)));
    const enrollable = withTargets.filter((m): m is FactorModule => Boolean(m));
    // A factor that creates its credential (an app scanned, a passkey) proves nothing the account already
    // has: after only the password it may be added by a user with no second factor at all, or a stolen
    // password would do.
    const createsCredential = (m: FactorModule) => m.enrol.setup !== undefined || m.enrol.createsCredential === true;
    if (proven || !enrollable.some(createsCredential) || !(await this.hasAnySecondFactor(user))) return enrollable;
    return enrollable.filter((m) => !createsCredential(m));
  }

  /** Whether any module (allowed by this client or not) counts the user as enrolled. */
  async hasAnySecondFactor(user: User): Promise<boolean> {
    return (await this.methodsOf(user)).length > 0;
  }

  /**
   * The user's own order wins over the policy's: `users.method_order` (set on the account pages; the
   * newest enrolment becomes primary, as at TDC), then stored enrolments by position.
   */
  private primaryFirst(user: User, modules: FactorModule[], rows: readonly HeldRow[]): FactorModule[] {
    const ranked = [...methodOrderOf(user), ...rows.map((row) => row.type)];
    const rank = new Map<string, number>();
    ranked.forEach((type, i) => rank.has(type) || rank.set(type, i));
    // Backup methods (recovery codes) come last whatever their position.
    const key = (m: FactorModule) => [m.channel === 'backup' ? 1 : 0, rank.get(m.id) ?? Infinity];
    return [...modules].sort((a, b) => {
      const [ka, kb] = [key(a), key(b)];
      return ka[0] - kb[0] || ka[1] - kb[1];
    });
  }

  /** Every method the user can use with some client, the user's primary first. */
  async methodsOf(user: User): Promise<FactorModule[]> {
    return this.heldAmong(user, [...this.modules.values()]);
  }

  /** Makes a method the user's primary (a new enrolment, or "make primary" on the account pages). */
  async makePrimary(userId: string, factor: FactorId): Promise<void> {
    await this.prisma.$transaction(async (tx) => {
      const user = await tx.user.findUnique({ where: { id: userId }, select: { methodOrder: true } });
      if (!user) return;
      const order = [factor, ...methodOrderOf(user).filter((id) => id !== factor)];
      await tx.user.update({ where: { id: userId }, data: { methodOrder: order } });
    });
  }

  /** Stores the user's order of methods as shown on the account pages (unknown ids are dropped). */
  async setMethodOrder(userId: string, order: FactorId[]): Promise<void> {
    const known = order.filter((id, i) => this.modules.has(id) && order.indexOf(id) === i);
    await this.prisma.user.update({ where: { id: userId }, data: { methodOrder: known } });
  }
}

/** The stored order of methods, whatever the column holds. */
export function methodOrderOf(user: { methodOrder: unknown }): string[] {
  return Array.isArray(user.methodOrder) ? user.methodOrder.filter((id): id is string => typeof id === 'string') : [];
}
