import pino from 'pino';

export type Logger = pino.Logger;

/** Keys whose value is a URL or path: logged with the secrets in it replaced, not dropped. */
const urlKeys = new Set(['url', 'path', 'returnTo']);

/** Query parameters that carry a code or token (OAuth callbacks, token and revocation requests). */
const secretParameters =
  /([?&](?:code|token|access_token|refresh_token|id_token|id_token_hint|logout_token|request_uri|client_secret|client_assertion)=)[^&#\s]*/gi;

/**
 * A URL or path as it may be logged: the token of an email sign-in link
 * (`/interaction/<uid>/link/<challenge>/<token>`) and every code or token in the query replaced.
 */
export function withoutUrlSecrets(url: string): string {
  return url.replace(/(\/link\/[^/?#\s]+\/)[^/?#\s]+/g, '$1[redacted]').replace(secretParameters, '$1[redacted]');
}

/**
 * An error as logged: pino's standard form, without what some libraries put in their errors —
 * ioredis the failed command's arguments (keys and values: token ids, payloads), axios (inside the
 * Twilio and SendGrid SDKs) the whole request and response (the message body, the credentials),
 * Prisma the arguments of a call it refuses (PrismaClientValidationError quotes them in its message).
 */
export function loggableError(error: unknown): unknown {
  if (!(error instanceof Error)) return error;
  return withoutRequestData(pino.stdSerializers.err(error));
}

function withoutRequestData(serialized: Record<string, unknown>): Record<string, unknown> {
  if (serialized.type === 'PrismaClientValidationError' && typeof serialized.message === 'string') {
    // The message is "Invalid `prisma.x.y()` invocation:", the arguments, then what is wrong with them.
    const [invocation = '', ...rest] = serialized.message.trim().split('\n');
    const verdict = rest.filter((line) => line.trim()).pop() ?? '';
    const message = `${invocation.replace(/ in$/, ':')} ${verdict}`.trim();
    serialized.message = message;
    const frames = typeof serialized.stack === 'string' ? serialized.stack.split('\n').filter((line) => /^\s+at /.test(line)) : [];
    serialized.stack = [`PrismaClientValidationError: ${message}`, ...frames].join('\n');
  }
  const command = serialized.command as { name?: unknown } | undefined;
  if (command) serialized.command = { name: command.name };
  for (const field of ['config', 'request', 'response']) delete serialized[field];
  const inner = serialized.aggregateErrors;
  if (Array.isArray(inner)) serialized.aggregateErrors = inner.map((each) => withoutRequestData(each as Record<string, unknown>));
  return serialized;
}

/**
 * Structured logs; anything that could carry a secret is redacted at the source, and what slips
 * through to a logged object is redacted here: passwords, credentials, codes, tokens, the arguments
 * of a failed Redis command, the secrets in a logged URL.
 */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    serializers: { err: loggableError, error: loggableError },
    redact: {
      paths: [
        'password',
        '*.password',
        'req.headers.authorization',
        'req.headers.cookie',
        'client_secret',
        '*.client_secret',
        'code',
        'token',
        '*.token',
        'access_token',
        'refresh_token',
        'id_token',
        ...[...urlKeys].flatMap((key) => [key, `*.${key}`]),
      ],
      censor: (value, path) => (urlKeys.has(path[path.length - 1]) && typeof value === 'string' ? withoutUrlSecrets(value) : '[redacted]'),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
