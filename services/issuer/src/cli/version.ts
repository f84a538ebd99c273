import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const PACKAGE_NAME = '@sigil/issuer';

/** The `name` and `version` of the package.json in `dir`, if there is one that reads as JSON. */
function manifestIn(dir: string): { name?: unknown; version?: unknown } | undefined {
  try {
    const manifest: unknown = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
    return typeof manifest === 'object' && manifest !== null ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The issuer package's version, as its package.json says at run time. The manifest is looked for
 * above this module, up to the first one that is the issuer's: the CLI runs from dist/cli when
 * built and from src/cli under the tests, and a copy installed elsewhere may sit deeper still,
 * so no fixed relative path is assumed (and a workspace's own package.json is passed over).
 */
export function issuerVersion(from: string = path.dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = manifestIn(dir);
    if (manifest?.name === PACKAGE_NAME && typeof manifest.version === 'string') return manifest.version;
    if (path.dirname(dir) === dir) return 'unknown';
  }
}
