// @ts-check
/**
 * The flags of the one-server scripts (instructions.js, gc-trace.js, engine-refresh.js): parsed
 * strictly, and a bad one said in one line with the script's usage, exit code 2 (`fail`).
 */
import { parseArgs } from 'node:util';

import { fail } from './log.js';

/**
 * @template {NonNullable<import('node:util').ParseArgsConfig['options']>} T
 * @param {string} usage the script's usage line
 * @param {T} options
 */
export function parseFlags(usage, options) {
  try {
    return parseArgs({ options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    return fail(`${error instanceof Error ? error.message : String(error)}\n${usage}`);
  }
}

/**
 * A flag's whole number from 1 to `max`, or `fallback` when the flag was not given.
 * @param {string | undefined} value @param {number} fallback @param {string} flag
 * @param {string} usage @param {number} [max]
 */
export function positiveFlag(value, fallback, flag, usage, max = Number.MAX_SAFE_INTEGER) {
  if (value === undefined) return fallback;
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1 || number > max) {
    fail(`--${flag} must be a whole number from 1${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}\n${usage}`);
  }
  return number;
}
