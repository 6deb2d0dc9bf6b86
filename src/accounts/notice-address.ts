import type { User } from '../generated/prisma/client.ts';
import type { PrismaClient } from '../storage/db.ts';

/**
 * Where mail about the account goes (a changed password, a used recovery code, "it wasn't me"): the
 * sign-in address, else the oldest verified contact address; none for a user with a user name only.
 */
export async function noticeAddressOf(prisma: Pick<PrismaClient, 'userEmail'>, user: Pick<User, 'id' | 'email'>): Promise<string | undefined> {
  if (user.email) return user.email;
  const row = await prisma.userEmail.findFirst({
    where: { userId: user.id, verifiedAt: { not: null } },
    orderBy: { createdAt: 'asc' },
    select: { address: true },
  });
  return row?.address;
}
