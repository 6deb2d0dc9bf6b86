process.env.NYCKEL_TEST_DB = 'postgres';
// The production setup: a PostgreSQL server and Redis (test/support/redis.ts).
process.env.NYCKEL_TEST_REDIS = 'true';
