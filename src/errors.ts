/**
 * The one error type of Nyckel. Every failure a person or a client can cause is a NyckelError with
 * an OAuth-style code; `httpStatus` maps it to HTTP in one place, and hosted pages show the
 * localised message for `code` (locales key `errors.<code>`).
 */
export const errorStatus = {
  invalid_request: 400,
  invalid_input: 400,
  invalid_csrf: 403,
  access_denied: 403,
  login_required: 401,
  not_found: 404,
  session_expired: 400,
  payload_too_large: 413,
  unsupported_media_type: 415,
  rate_limited: 429,
  conflict: 409,
  temporarily_unavailable: 503,
  server_error: 500,
} as const;

export type ErrorCode = keyof typeof errorStatus;

export class NyckelError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Safe to show to the person or client; never contains secrets or internals. */
  readonly detail?: string;
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, detail?: string, options: { cause?: unknown; retryAfterSeconds?: number } = {}) {
    super(detail ?? code, { cause: options.cause });
    this.name = 'NyckelError';
    this.code = code;
    this.status = errorStatus[code];
    this.detail = detail;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

export function isNyckelError(error: unknown): error is NyckelError {
  return error instanceof NyckelError;
}
