/**
 * `npm run bench:queries`: what one password sign-in (authorize → password → first-party consent
 * skip → code → token) asks of the PostgreSQL server (BENCH_DATABASE_URL, default the local one),
 * counted at the driver: SQL statements node-postgres sends (BEGIN and COMMIT included), and the HTTP
 * requests Nyckel serves. Without Redis: everything is in the database. `--totp`: the sign-in of a
 * user with an authenticator app, at an app that asks for its code. `--log`: each statement of one
 * sign-in, under the request it served.
 */
import http from 'node:http';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { passwordLogin, type LoginUser } from './http.ts';
import { APP, MFA_APP, PASSWORD, removeLeftovers, startBenchNyckel } from './targets.ts';
import { seedTotpUsers, TotpUserPool } from './totp-users.ts';

const { values } = parseArgs({
  options: { 'sign-ins': { type: 'string', default: '20' }, totp: { type: 'boolean', default: false }, log: { type: 'boolean', default: false } },
});
const signIns = Number(values['sign-ins']);

let statements = 0;
/** With --log: the request being served (sign-ins run one at a time), to label each statement. */
let servingRequest = '';
let logging = false;
// The drivers' own methods are wrapped and called with their `this`: counting is all this does.
// eslint-disable-next-line @typescript-eslint/unbound-method
const query = pg.Client.prototype.query;
pg.Client.prototype.query = function counted(this: pg.Client, ...args: unknown[]) {
  statements++;
  if (logging) {
    const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text?: string }).text;
    console.log(`  ${servingRequest.padEnd(28)} ${String(text).replace(/\s+/g, ' ').slice(0, 150)}`);
  }
  return (query as (...a: unknown[]) => unknown).apply(this, args);
} as typeof query;
let requests = 0;
// eslint-disable-next-line @typescript-eslint/unbound-method
const request = http.Server.prototype.emit;
http.Server.prototype.emit = function counted(this: http.Server, event: string, ...args: unknown[]) {
  if (event === 'request') {
    requests++;
    const request = args[0] as http.IncomingMessage;
    servingRequest = `${request.method} ${request.url?.split('?')[0].replace(/[A-Za-z0-9_-]{20,}/g, ':id')}`;
  }
  return request.apply(this, [event, ...args] as Parameters<typeof request>);
} as typeof request;

async function main() {
  const adminUrl = process.env.BENCH_DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
  const nyckel = await startBenchNyckel({ postgresAdminUrl: adminUrl });
  try {
    const app = values.totp ? MFA_APP : APP;
    let users: LoginUser[] | (() => LoginUser);
    if (values.totp) {
      users = new TotpUserPool(await seedTotpUsers(nyckel.nyckel.settings, signIns + 2, PASSWORD)).take;
    } else {
      users = [{ email: 'bench-user-0@nyckel.example', password: PASSWORD }];
      await nyckel.nyckel.accounts.create({ ...users[0], name: 'Bench User' }, { actor: 'bench' });
    }
    const login = passwordLogin({ base: nyckel.base, clientId: app.clientId, secret: app.secret, redirectUri: app.redirectUri, users });
    await login(0);
    logging = values.log;
    await login(0);
    logging = false;
    const [statementsBefore, requestsBefore] = [statements, requests];
    for (let i = 0; i < signIns; i++) await login(0);
    const perSignIn = (n: number) => (n / signIns).toFixed(1);
    console.log(
      `${nyckel.database}: per ${values.totp ? 'password + authenticator app' : 'password'} sign-in ${perSignIn(statements - statementsBefore)} SQL statements (node-postgres), ${perSignIn(requests - requestsBefore)} HTTP requests`,
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
