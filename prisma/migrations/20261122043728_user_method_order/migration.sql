-- AlterTable
ALTER TABLE "users" ADD COLUMN     "method_order" JSONB NOT NULL DEFAULT '[]';
