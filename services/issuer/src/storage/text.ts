/**
 * PostgreSQL's text and jsonb cannot hold U+0000: a statement given one fails. Storage answers
 * such input itself instead, so that a NUL byte from a request is never a database error: a
 * lookup of a key containing one finds nothing (no stored key can contain one), a write of one
 * is refused with {@link UnstorableValueError}, and free text kept for the record (audit trail,
 * throttle counters) has it replaced.
 */
const NUL = '\u0000';

/** A value to store carries a character the database cannot hold: bad input, not a failure. */
export class UnstorableValueError extends Error {
  override name = 'UnstorableValueError';
  readonly code = 'ERR_UNSTORABLE_VALUE';
}

/** Whether `value` can be a key of a stored row. */
export function isStorableKey(value: string): boolean {
  return !value.includes(NUL);
}

/** Whether any string inside `value` (a JSON-like tree) contains U+0000. */
export function containsNul(value: unknown, depth = 0): boolean {
  if (typeof value === 'string') return value.includes(NUL);
  if (typeof value !== 'object' || value === null || depth > 32) return false;
  for (const member of Array.isArray(value) ? value : Object.entries(value).flat()) {
    if (containsNul(member, depth + 1)) return true;
  }
  return false;
}

/** Throws {@link UnstorableValueError} when `value` cannot be stored. */
export function assertStorable(value: unknown): void {
  if (containsNul(value)) throw new UnstorableValueError('the value contains U+0000, which cannot be stored');
}

/** Free text kept for the record, with U+0000 replaced by U+FFFD (the replacement character). */
export function recordableText(value: string): string {
  return value.includes(NUL) ? value.replaceAll(NUL, '\uFFFD') : value;
}
