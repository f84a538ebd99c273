import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

import { describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { postForm, registerClient } from '../support/oauth.js';

/** Every path under `dir` (and `dir` itself) whose mode lets group or others in, with that mode. */
async function openToOthers(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  const paths = [dir, ...entries.map((entry) => path.join(entry.parentPath, entry.name))];
  const open: string[] = [];
  for (const item of paths) {
    const { mode } = await stat(item);
    if ((mode & 0o077) !== 0) open.push(`${path.relative(dir, item)} ${(mode & 0o777).toString(8)}`);
  }
  return open;
}

describe.each(backends)('files under DATA_DIR ($name)', (backend) => {
  const suite = issuerSuite(backend);

  it('when the issuer has started and written data, no file or directory under DATA_DIR is readable by group or others', async () => {
    const machine = await registerClient(suite.issuer.stores.clients, { name: 'm', grants: ['client_credentials'], resources: ['https://api.example.com'] });
    expect((await postForm(suite.issuer.url, { grant_type: 'client_credentials' }, machine)).status).toBe(200);
    const { dataDir } = suite.database;
    expect((await readdir(dataDir, { recursive: true })).length).toBeGreaterThan(0);
    expect(await openToOthers(dataDir)).toEqual([]);
  });
});
