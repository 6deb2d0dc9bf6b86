-- AlterTable
ALTER TABLE "deliveries" ADD COLUMN     "body" BYTEA,
ALTER COLUMN "text" DROP NOT NULL;

-- AlterTable
ALTER TABLE "oidc_models" ADD COLUMN     "sealed" BYTEA;

-- Mail already sent or given up keeps no body (its codes and links). Queued mail and the dev outbox
-- are sealed with the master key when Nyckel next starts (src/delivery/sealed-body.ts), and
-- oidc_models rows are re-keyed then (src/storage/oidc-at-rest.ts). (No semicolon in comments: the
-- PostgreSQL driver adapter splits the script on them.)
UPDATE "deliveries" SET "subject" = NULL, "text" = NULL, "html" = NULL
 WHERE "status" <> 'queued' AND "transport" IS DISTINCT FROM 'outbox';
