import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from '@jest/globals';

import { backends } from '../support/backends.js';
import { issuerSuite } from '../support/issuer.js';
import { registerClient, type Credentials } from '../support/oauth.js';
import { runToExit, type RunResult } from '../support/process.js';

const REPOSITORY = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const ORDERS = 'http://localhost:4001';
/** Debian's interpreter, where python3-authlib installs (CI installs it); PYTHON overrides. */
const PYTHON = process.env['PYTHON'] ?? '/usr/bin/python3';

interface Snippet {
  readonly language: 'js' | 'python';
  readonly code: string;
}

/**
 * The runnable code blocks of the README's "Use it from your stack" section: those whose first
 * line says how they run (`// runs as: …`, `# runs as: …`). What a reader copies is what runs here.
 */
async function readmeSnippets(): Promise<Snippet[]> {
  const readme = await fs.readFile(path.join(REPOSITORY, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Use it from your stack\n');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end);
  const snippets: Snippet[] = [];
  for (const match of section.matchAll(/```(js|python)\n([\s\S]*?)```/gu)) {
    const [, language, code = ''] = match;
    if (/^(\/\/|#) runs as: /u.test(code)) snippets.push({ language: language as Snippet['language'], code });
  }
  return snippets;
}

/** Runs a snippet as its first line says (node for JavaScript, from the repository so its packages resolve). */
function run(snippet: Snippet, env: Record<string, string>): Promise<RunResult> {
  const [command, args] = snippet.language === 'js' ? [process.execPath, ['--input-type=module', '-e', snippet.code]] : [PYTHON, ['-c', snippet.code]];
  return runToExit(command, args, env, { cwd: REPOSITORY });
}

describe.each(backends)('the README\'s "Use it from your stack" snippets against a real issuer ($name)', (backend) => {
  const suite = issuerSuite(backend);
  let snippets: Snippet[];
  let machine: Credentials;

  beforeAll(async () => {
    snippets = await readmeSnippets();
    machine = await registerClient(suite.issuer.stores.clients, { name: 'stack machine', grants: ['client_credentials'], scopes: ['orders:read', 'orders:write'], resources: [ORDERS] });
  });

  it('the section has an openid-client and an Authlib machine client to run', () => {
    expect(snippets.map((snippet) => snippet.language).sort()).toEqual(['js', 'python']);
  });

  it.each(['js', 'python'] as const)('the %s machine client gets a token for orders-api with the scope it asked for', async (language) => {
    const snippet = snippets.find((candidate) => candidate.language === language);
    if (snippet === undefined) throw new Error(`no runnable ${language} snippet in the README`);
    const result = await run(snippet, { ISSUER: suite.issuer.issuer, CLIENT_ID: machine.id, CLIENT_SECRET: machine.secret, RESOURCE: ORDERS });
    expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: '' });
    const printed = JSON.parse(result.stdout) as { token_type: string; scope: string; expires_in: number };
    expect(printed.token_type.toLowerCase()).toBe('bearer');
    expect(printed.scope).toBe('orders:read');
    expect(printed.expires_in).toBeGreaterThan(0);
  });
});
