-- AlterTable
ALTER TABLE "sign_in_attempts" ADD COLUMN     "pending_password_hash" TEXT;

-- AlterTable
ALTER TABLE "users" ADD COLUMN     "username" TEXT,
ALTER COLUMN "email" DROP NOT NULL;

-- CreateIndex
CREATE UNIQUE INDEX "users_username_key" ON "users"("username");

-- Every account keeps a name to sign in with: an address, a user name, or both.
ALTER TABLE "users" ADD CONSTRAINT "users_sign_in_name" CHECK ("email" IS NOT NULL OR "username" IS NOT NULL);
