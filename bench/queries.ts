/**
 * `npm run bench:queries`: what one password sign-in (authorize → password → first-party consent
 * skip → code → token) asks of the PostgreSQL server (BENCH_DATABASE_URL, default the local one),
 * counted at the driver: SQL statements node-postgres sends (BEGIN and COMMIT included), and the HTTP
 * requests Nyckel serves. Without Redis: everything is in the database.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { passwordLogin } from './http.ts';
import { APP, PASSWORD, removeLeftovers, startBenchNyckel } from './targets.ts';

const { values } = parseArgs({ options: { 'sign-ins': { type: 'string', default: '20' } } });
const signIns = Number(values['sign-ins']);

let statements = 0;
// The drivers' own methods are wrapped and called with their `this`: counting is all this does.
// eslint-disable-next-line @typescript-eslint/unbound-method
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function counted(this: pg.Client, ...args: unknown[]) {
  statements++;
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;
let requests = 0;
// eslint-disable-next-line @typescript-eslint/unbound-method
const request = http.Server.prototype.emit;
http.Server.prototype.emit = function counted(this: http.Server, event: string, ...args: unknown[]) {
  if (event === 'request') requests++;
  return request.apply(this, [event, ...args] as Parameters<typeof request>);
} as typeof request;

async function main() {
  const adminUrl = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const nyckel = await startBenchNyckel({ postgresAdminUrl: adminUrl });
  try {
    const users = [{ email: 'bench-user-0@nyckel.example', password: PASSWORD }];
    await nyckel.nyckel.accounts.create({ ...users[0], name: 'Bench User' }, { actor: 'bench' });
    const login = passwordLogin({ base: nyckel.base, clientId: APP.clientId, secret: APP.secret, redirectUri: APP.redirectUri, users });
    await login(0);
    const [statementsBefore, requestsBefore] = [statements, requests];
    for (let i = 0; i < signIns; i++) await login(0);
    const perSignIn = (n: number) => (n / signIns).toFixed(1);
    console.log(
      `${nyckel.database}: per password sign-in ${perSignIn(statements - statementsBefore)} SQL statements (node-postgres), ${perSignIn(requests - requestsBefore)} HTTP requests`,
    );
  } finally {
    await nyckel.stop();
  }
}

main().then(
  () => process.exit(0),
  async (error) => {
    console.error(error);
    await removeLeftovers();
    process.exit(1);
  },
);
