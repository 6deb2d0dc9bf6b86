import { describe, expect, test } from '@jest/globals';
import { failureKey, outcomeView } from '../../src/web/shared/outcome-view.ts';

describe('one mapping of a failure to words, HTTP status and Retry-After', () => {
  test('a wrong answer is 401, a lock 429 with Retry-After, anything else 400', () => {
    expect(outcomeView('en', 'answer', { reason: 'wrong_code', attemptsLeft: 2 })).toMatchObject({ status: 401, retryAfterSeconds: undefined });
    expect(outcomeView('en', 'answer', { reason: 'locked', retryAfterSeconds: 300 })).toMatchObject({ status: 429, retryAfterSeconds: 300 });
    expect(outcomeView('en', 'answer', { reason: 'expired' }).status).toBe(400);
  });

  test('a send refused by the cooldown or a budget is 429 with Retry-After; other refusals 400 without', () => {
    expect(outcomeView('en', 'send', { reason: 'cooldown', retryAfterSeconds: 30 })).toMatchObject({ status: 429, retryAfterSeconds: 30 });
    expect(outcomeView('en', 'send', { reason: 'rate_limited', retryAfterSeconds: 60 })).toMatchObject({ status: 429, retryAfterSeconds: 60 });
    expect(outcomeView('en', 'send', { reason: 'invalid_number', retryAfterSeconds: 60 })).toMatchObject({ status: 400, retryAfterSeconds: undefined });
  });

  test('an outside service down is 503; a link is 403 in another browser, else 410; enrolment codes 429 or 401', () => {
    expect(outcomeView('en', 'outside-start', { reason: 'provider_unavailable', retryAfterSeconds: 5 })).toMatchObject({ status: 503, retryAfterSeconds: 5 });
    expect(outcomeView('en', 'link', { reason: 'other_browser' }).status).toBe(403);
    expect(outcomeView('en', 'link', { reason: 'used' }).status).toBe(410);
    expect(outcomeView('en', 'enrol-answer', { reason: 'expired' }).status).toBe(401);
    expect(outcomeView('en', 'enrol-answer', { reason: 'locked' }).status).toBe(429);
  });

  test("a factor's own words first; a code read from a device has its own words for used and expired", () => {
    expect(failureKey('en', { reason: 'wrong_code' }, { id: 'passkey' })).toBe('passkey_wrong_code');
    expect(failureKey('en', { reason: 'wrong_code' }, { id: 'email-code' })).toBe('wrong_code');
    expect(failureKey('en', { reason: 'used' }, { id: 'totp', readsCode: true })).toBe('used_code');
    expect(failureKey('en', { reason: 'locked' }, { id: 'totp', readsCode: true })).toBe('locked');
    expect(failureKey('en', { reason: 'used' })).toBe('used');
  });

  test('the words name the minutes to wait', () => {
    expect(outcomeView('en', 'answer', { reason: 'locked', retryAfterSeconds: 600 }).message).toMatch(/10/);
  });
});
