// @ts-check
/** The bench's own lines on stderr (stdout carries only the report). */

/** @param {string} message */
export const progress = (message) => process.stderr.write(`bench: ${message}\n`);

/**
 * A usage problem, found before anything was started: said on stderr, exit code 2.
 * @param {string} message
 * @returns {never}
 */
export function fail(message) {
  process.stderr.write(`bench: ${message}\n`);
  process.exit(2);
}
