import type { SecretBox } from '../security/crypto.ts';

const PSEUDONYM_PURPOSE = 'audit-pseudonym';

/**
 * What an erased user's audit events name them by: a keyed hash (HMAC-SHA256 with a key derived from
 * the master key) of the user id. The same user always gets the same pseudonym, so their events still
 * read as one person's; without the master key nobody can tell whose.
 */
export function pseudonymOf(box: SecretBox, userId: string): string {
  return `erased:${box.mac(PSEUDONYM_PURPOSE, userId)}`;
}

/** Detail fields that name a person (addresses, numbers, names, labels they chose, where they came from). */
const PERSONAL_FIELDS = new Set([
  'address',
  'addresses',
  'contact',
  'email',
  'from',
  'to',
  'ip',
  'label',
  'masked',
  'method',
  'name',
  'number',
  'phone',
  'user',
  'userAgent',
  'username',
]);

/** Stands in for a value that named the user. */
export const ERASED = '[erased]';

const escaped = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** `text` with every mention of one of `names` (any case) replaced by ERASED. */
export function maskNames(text: string, names: readonly string[]): string {
  return names.length === 0 ? text : text.replace(new RegExp(names.map(escaped).join('|'), 'gi'), ERASED);
}

/**
 * An audit event's details without what names the user: personal fields go, and every mention of one
 * of `names` (the user's id, addresses, numbers, user name) in the rest is masked, however deep.
 */
export function scrubDetails(value: unknown, names: readonly string[]): unknown {
  if (typeof value === 'string') return maskNames(value, names);
  if (Array.isArray(value)) return value.map((item) => scrubDetails(item, names));
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value)
        .filter(([key]) => !PERSONAL_FIELDS.has(key))
        .map(([key, item]) => [key, scrubDetails(item, names)]),
    );
  }
  return value;
}

/** The user's names as erasure searches for them: lower-cased, and none so short it would match anything. */
export function searchableNames(names: Array<string | null | undefined>): string[] {
  return [...new Set(names.filter((name): name is string => typeof name === 'string' && name.trim().length >= 3).map((name) => name.toLowerCase()))];
}

/** What a name (id, address, number, user name) is made of: a mention of one is bounded by none of these. */
const NAME_CHAR = String.raw`\p{L}\p{N}_%+@`;

/**
 * A mention of one of `names` as a whole: not a piece of a longer name. Before it no name character,
 * dot or hyphen ("anna@x.se" is not in "hanna@x.se" nor "j.anna@x.se"); after it none, nor a dot or
 * hyphen that goes on ("anna@x.se.example"), though a full stop that ends a sentence does not count.
 */
function mentionPattern(names: readonly string[]): RegExp {
  const alternatives = [...names].sort((a, b) => b.length - a.length).map(escaped);
  return new RegExp(String.raw`(?<![${NAME_CHAR}.\-])(?:${alternatives.join('|')})(?![${NAME_CHAR}]|[.\-][${NAME_CHAR}])`, 'giu');
}

/**
 * Another account's audit event (or one of no account) with every whole mention of one of `names`
 * masked, however deep, and nothing else changed: its own personal fields are its owner's, not the
 * erased user's, and a name that merely contains one of `names` is someone else's.
 */
export function maskMentions(value: unknown, names: readonly string[]): unknown {
  if (names.length === 0) return value;
  const pattern = mentionPattern(names);
  const mask = (item: unknown): unknown => {
    if (typeof item === 'string') return item.replace(pattern, ERASED);
    if (Array.isArray(item)) return item.map(mask);
    if (item && typeof item === 'object') return Object.fromEntries(Object.entries(item).map(([key, inner]) => [key, mask(inner)]));
    return item;
  };
  return mask(value);
}
