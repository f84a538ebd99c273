import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';

import { backends, databaseSuite } from '../support/backends.js';
import { sigil, sigilJson } from '../support/cli.js';
import { eventually } from '../support/http.js';
import { startTestIssuer, testEnv, type TestIssuer } from '../support/issuer.js';
import { runIssuerProcess } from '../support/process.js';

/**
 * A read-only view of `source` at `target`, as a mounted secret would be: a read-only bind mount
 * where the test may mount (root), else the directory's write permission removed (which root
 * would ignore). Undefined when neither makes it read-only.
 */
function readOnlyView(source: string, target: string): { readonly path: string; undo(): void } | undefined {
  try {
    execFileSync('mount', ['--bind', '-o', 'ro', source, target], { stdio: 'ignore' });
    return { path: target, undo: () => execFileSync('umount', [target], { stdio: 'ignore' }) };
  } catch {
    if (process.getuid?.() === 0) return undefined;
    execFileSync('chmod', ['0500', source]);
    return { path: source, undo: () => execFileSync('chmod', ['0700', source]) };
  }
}

const canMakeReadOnly = (() => {
  try {
    execFileSync('mount', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return process.getuid?.() !== 0;
  }
})();

describe.each(backends)('a read-only KEYS_DIR (a mounted secret) ($name)', (backend) => {
  const suite = databaseSuite(backend);
  const run = canMakeReadOnly ? it : it.skip;

  run('the issuer starts on it, and commands that would write it are refused in one line, writing nothing', async () => {
    const root = path.dirname(suite.database.keysDir);
    const source = path.join(root, 'secret-source');
    const target = path.join(root, 'secret-mount');
    await fs.mkdir(target, { recursive: true });
    // written where the secret is managed, then mounted read-only
    await sigilJson(['keys', 'generate'], testEnv(suite.database, { KEYS_DIR: source }));
    const view = readOnlyView(source, target);
    let issuer: TestIssuer | undefined;
    try {
      const dir = view?.path ?? '';
      expect(view).toBeDefined();
      await expect(fs.writeFile(path.join(dir, 'probe'), '')).rejects.toThrow();
      issuer = await startTestIssuer(suite.database, { KEYS_DIR: dir });
      const url = issuer.url;
      const kids = async () => ((await (await fetch(`${url}/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
      expect(await kids()).toHaveLength(1);

      for (const args of [['keys', 'generate'], ['keys', 'rotate', '--force']]) {
        const refused = await sigil(args, testEnv(suite.database, { KEYS_DIR: dir }));
        expect({ args, code: refused.code, stderr: refused.stderr }).toEqual({
          args,
          code: 1,
          stderr: `sigil: KEYS_DIR ${dir} is read-only (a mounted secret?): change the keys where that directory is written; issuers follow its changes\n`,
        });
      }
      // reading works
      expect((await sigilJson<{ keys: unknown[] }>(['keys', 'list'], testEnv(suite.database, { KEYS_DIR: dir }))).keys).toHaveLength(1);

      // a change where the secret is written reaches the issuer that reads the read-only view
      const next = await sigilJson<{ kid: string }>(['keys', 'generate'], testEnv(suite.database, { KEYS_DIR: source }));
      await eventually(async () => ((await kids()).includes(next.kid) ? true : undefined), 10_000, 100);
    } finally {
      await issuer?.close();
      view?.undo();
    }
  });

  run('when the read-only directory holds no key, the issuer exits 1 with one line saying where to create one', async () => {
    const root = path.dirname(suite.database.keysDir);
    const emptySource = path.join(root, 'empty-source');
    const emptyTarget = path.join(root, 'empty-mount');
    await fs.mkdir(emptySource, { recursive: true, mode: 0o700 });
    await fs.mkdir(emptyTarget, { recursive: true });
    const empty = readOnlyView(emptySource, emptyTarget);
    try {
      const result = await runIssuerProcess({ ...testEnv(suite.database), KEYS_DIR: empty?.path ?? '', PORT: '0', WEB_CONCURRENCY: '1' });
      expect(result.code).toBe(1);
      const lines = result.stderr.trimEnd().split('\n').filter((line) => !line.includes('Unsupported runtime') && line.trim() !== '');
      expect(lines).toEqual([`sigil: KEYS_DIR ${empty?.path ?? ''} holds no key and is read-only: create one where it is written (sigil keys generate)`]);
    } finally {
      empty?.undo();
    }
  });
});
