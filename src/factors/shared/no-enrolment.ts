import type { FactorModule } from '../contract.ts';

/** For a factor that is not enrolled through the sign-in pages' enrolment (it comes another way). */
export const noEnrolmentAtSignIn: FactorModule['enrol'] = {
  targets: async () => [],
  begin: async () => ({ status: 'failed', reason: 'not_enrolled' }),
  complete: async () => ({ status: 'failed', reason: 'not_enrolled' }),
};
