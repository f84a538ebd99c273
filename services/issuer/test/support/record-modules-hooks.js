// @ts-check
/* The module hooks of record-modules.js (they run on the loader's own thread). */
import fs from 'node:fs';

/** @type {string | undefined} */
let file;

/** @param {{ file?: string }} data */
export function initialize(data) {
  file = data.file;
}

/**
 * @param {string} specifier
 * @param {unknown} context
 * @param {(specifier: string, context: unknown) => Promise<{ url: string }>} next
 */
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  if (file !== undefined) fs.appendFileSync(file, `${resolved.url}\n`);
  return resolved;
}
