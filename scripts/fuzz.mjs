#!/usr/bin/env node
// Runs the issuer's seeded fuzz suite (services/issuer/test/integration/fuzz.test.ts) with more
// requests or another seed: `node scripts/fuzz.mjs --count 10000 --seed 7`. It boots a real
// issuer on PGlite, and on PostgreSQL too when TEST_DATABASE_URL is set, aims the same
// generator at every endpoint and page, and fails listing every 5xx, every API error that is
// not RFC 6749 JSON and every page without the security headers.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values } = parseArgs({ options: { count: { type: 'string', default: '10000' }, seed: { type: 'string', default: '20261201' } } });
for (const [name, value] of Object.entries(values)) {
  if (!/^\d+$/u.test(value)) {
    process.stderr.write(`fuzz: --${name} must be a whole number\n`);
    process.exit(2);
  }
}

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const result = spawnSync(
  process.execPath,
  [path.join(root, 'node_modules/jest/bin/jest.js'), '--runInBand', 'services/issuer/test/integration/fuzz.test.ts', '-t', 'malformed requests'],
  {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, FUZZ_COUNT: values.count, FUZZ_SEED: values.seed, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules`.trim() },
  },
);
process.exit(result.status ?? 1);
