// Every suite runs on the embedded PGlite; storage and flow suites run again in the production setup:
// the PostgreSQL server (DATABASE_URL_TEST, default postgres://postgres@127.0.0.1:5432/test), each in a
// fresh database, with Redis (REDIS_URL_TEST, default redis://127.0.0.1:6379) under a fresh key prefix.
const transform = {
  '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
};
const common = {
  transform,
  extensionsToTreatAsEsm: ['.ts'],
  testEnvironment: 'node',
};
export default {
  testTimeout: 60_000,
  // Jest's default on a 2-core machine is one worker; the suites mostly wait (browsers, timers, child
  // processes, the database), so two run the whole suite in about 10 minutes instead of 17.
  maxWorkers: 2,
  projects: [
    { ...common, displayName: 'pglite', testMatch: ['<rootDir>/test/**/*.test.ts'] },
    {
      ...common,
      displayName: 'postgres',
      testMatch: ['<rootDir>/test/storage/**/*.test.ts', '<rootDir>/test/flow/**/*.test.ts'],
      setupFiles: ['<rootDir>/test/support/use-postgres.js'],
    },
  ],
};
