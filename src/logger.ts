import pino from 'pino';

export type Logger = pino.Logger;

/** Structured logs; anything that could carry a secret is redacted at the source. */
export function createLogger(level: string): Logger {
  return pino({
    level,
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
      ],
      censor: '[redacted]',
    },
  });
}
