import { describe, expect, test } from '@jest/globals';
import { ERASED, maskMentions } from '../../src/accounts/pseudonymise.ts';

/** What erasure masks in another account's audit event: whole mentions of the user's identifiers, nothing else. */
describe('maskMentions', () => {
  const names = ['anna@x.se', 'anna', '+46701112201', '0b6c2c1e-1111-4222-8333-444455556666'];
  const masked = (text: string) => maskMentions(text, names);

  test.each([
    ['anna@x.se', ERASED],
    ['was ANNA@X.SE.', `was ${ERASED}.`],
    ['was anna@x.se...', `was ${ERASED}...`],
    ['mail:anna@x.se, then', `mail:${ERASED}, then`],
    ['asked by anna', `asked by ${ERASED}`],
    ['tel +46701112201;', `tel ${ERASED};`],
    ['x/0b6c2c1e-1111-4222-8333-444455556666/y', `x/${ERASED}/y`],
  ])('masks a whole mention: %s', (text, expected) => expect(masked(text)).toBe(expected));

  test.each(['hanna@x.se', 'j.anna@x.se', 'anna@x.se.example', 'anna@x.sex', 'annas', 'hanna', 'anna-b', 'anna.b', '+467011122012', 'Ånna', 'annå'])(
    'leaves a name that merely contains one: %s',
    (text) => expect(masked(text)).toBe(text),
  );

  test("goes deep and keeps everything else, personal fields of the event's own user included", () => {
    const event = { ip: '192.0.2.7', userAgent: 'Firefox', address: 'hanna@x.se', from: 'anna@x.se', list: [{ to: 'ANNA@x.se' }, 3, null] };
    expect(maskMentions(event, names)).toEqual({ ...event, from: ERASED, list: [{ to: ERASED }, 3, null] });
    expect(maskMentions(event, [])).toBe(event);
  });
});
