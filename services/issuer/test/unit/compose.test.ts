import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from '@jest/globals';
import { parse } from 'yaml';

import { ISSUER_VARIABLES } from '../../src/config.js';
import { REPORTS_VARIABLES, reportsConfig } from '../../../orders-api/src/reports.js';
import { RESOURCE_SERVICE_VARIABLES, resourceServiceConfig } from '@sigil/resource-kit';

// There is no Docker engine where the tests run: the compose file is kept correct by reading it,
// and this is the reading that a machine can do.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../..');
const composeText = fs.readFileSync(path.join(root, 'docker-compose.yml'), 'utf8');

interface EnvFile {
  readonly path: string;
  readonly required: boolean;
}

interface Service {
  readonly name: string;
  readonly build: unknown;
  readonly image: string | undefined;
  readonly command: readonly string[] | undefined;
  readonly environment: readonly string[];
  readonly envFiles: readonly EnvFile[];
  readonly dependsOn: ReadonlyMap<string, string>;
  readonly healthcheck: unknown;
}

function record(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error(`${where} is not a mapping`);
  return value as Record<string, unknown>;
}

/** `environment:` as a mapping or as a list of NAME=value, reduced to its names. */
function environmentNames(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (Array.isArray(value)) return value.map((entry) => String(entry).split('=')[0] ?? '');
  return Object.keys(record(value, where));
}

/** `env_file:` in each of its documented forms: a path, a list of paths, a list of { path, required }. */
function envFiles(value: unknown, where: string): EnvFile[] {
  if (value === undefined) return [];
  const entries: unknown[] = Array.isArray(value) ? value : [value];
  return entries.map((entry) => {
    if (typeof entry === 'string') return { path: entry, required: true };
    const long = record(entry, where);
    return { path: String(long['path']), required: long['required'] !== false };
  });
}

/** `depends_on:` as a list (started, not waited for) or a mapping of conditions. */
function dependsOn(value: unknown, where: string): Map<string, string> {
  if (value === undefined) return new Map();
  if (Array.isArray(value)) return new Map(value.map((name) => [String(name), 'service_started']));
  return new Map(
    Object.entries(record(value, where)).map(([name, spec]) => [name, String(record(spec, `${where}.${name}`)['condition'] ?? 'service_started')]),
  );
}

const services: readonly Service[] = Object.entries(record(record(parse(composeText), 'the compose file')['services'], 'services')).map(
  ([name, raw]) => {
    const spec = record(raw, name);
    return {
      name,
      build: spec['build'],
      image: typeof spec['image'] === 'string' ? spec['image'] : undefined,
      command: Array.isArray(spec['command']) ? spec['command'].map(String) : undefined,
      environment: environmentNames(spec['environment'], `${name}.environment`),
      envFiles: envFiles(spec['env_file'], `${name}.env_file`),
      dependsOn: dependsOn(spec['depends_on'], `${name}.depends_on`),
      healthcheck: spec['healthcheck'],
    };
  },
);

function service(name: string): Service {
  const found = services.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no service ${name} in docker-compose.yml`);
  return found;
}

/** The names an env file's committed example sets (KEY=value lines; # comments and blanks skipped). */
function exampleNames(file: string): string[] {
  return fs
    .readFileSync(path.join(root, `${file}.example`), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => line.split('=')[0] ?? '');
}

/** The names a configuration reader asks the environment for, recorded as it reads an empty one. */
function namesRead(read: (env: Record<string, string | undefined>) => unknown): string[] {
  const asked = new Set<string>();
  const env = new Proxy<Record<string, string | undefined>>({}, {
    get: (_target, name) => {
      if (typeof name === 'string') asked.add(name);
      return undefined;
    },
  });
  read(env);
  return [...asked];
}

/** Whether git ignores a path of the repository (check-ignore answers 0 for ignored, 1 for not). */
function ignoredByGit(file: string): boolean {
  const result = spawnSync('git', ['check-ignore', '-q', '--', file], { cwd: root, encoding: 'utf8' });
  if (result.status !== 0 && result.status !== 1) throw new Error(`git check-ignore ${file}: ${result.stderr || String(result.error)}`);
  return result.status === 0;
}

// The official postgres image's documented variables (its entrypoint and PostgreSQL's own PGDATA).
const POSTGRES_IMAGE_VARIABLES = ['POSTGRES_USER', 'POSTGRES_PASSWORD', 'POSTGRES_DB', 'POSTGRES_INITDB_ARGS', 'POSTGRES_INITDB_WALDIR', 'POSTGRES_HOST_AUTH_METHOD', 'PGDATA'];

/** What each service's process reads from its environment. */
const READS: Readonly<Record<string, readonly string[]>> = {
  postgres: POSTGRES_IMAGE_VARIABLES,
  issuer: ISSUER_VARIABLES,
  'orders-api': [...RESOURCE_SERVICE_VARIABLES, ...REPORTS_VARIABLES],
  'reports-api': RESOURCE_SERVICE_VARIABLES,
};

const SECRETS = ['COOKIE_KEYS', 'KEYS_ENCRYPTION_KEY', 'POSTGRES_PASSWORD', 'DATABASE_URL', 'GUARD_CLIENT_SECRET'];

describe('docker-compose.yml', () => {
  it('has the four services, each with a list of what it reads', () => {
    expect(services.map((candidate) => candidate.name).sort()).toEqual(Object.keys(READS).sort());
  });

  it('passes each service only variables that service reads, from environment: and its env file examples', () => {
    const unread = services.flatMap((candidate) => {
      const passed = [...candidate.environment, ...candidate.envFiles.flatMap((file) => exampleNames(file.path))];
      return passed.filter((name) => !(READS[candidate.name] ?? []).includes(name)).map((name) => `${candidate.name}: ${name}`);
    });
    expect(unread).toEqual([]);
  });

  it('gives the issuer its secrets and the password, and PostgreSQL the same password, through env files', () => {
    expect(exampleNames('sigil.env').sort()).toEqual(['COOKIE_KEYS', 'DATABASE_URL', 'KEYS_ENCRYPTION_KEY']);
    expect(exampleNames('postgres.env')).toEqual(['POSTGRES_PASSWORD']);
    expect(service('issuer').envFiles).toEqual([{ path: 'sigil.env', required: true }]);
    expect(service('postgres').envFiles).toEqual([{ path: 'postgres.env', required: true }]);
    // the guard clients are created after the issuer runs: their files may not exist yet
    expect(service('orders-api').envFiles).toEqual([{ path: 'orders-api.env', required: false }]);
    expect(service('reports-api').envFiles).toEqual([{ path: 'reports-api.env', required: false }]);
  });

  it('has a committed example for every env file, and git ignores the real ones', () => {
    const files = services.flatMap((candidate) => candidate.envFiles.map((file) => file.path));
    expect(files.filter((file) => !fs.existsSync(path.join(root, `${file}.example`)))).toEqual([]);
    expect(files.filter((file) => !ignoredByGit(file))).toEqual([]);
    expect(files.map((file) => `${file}.example`).filter(ignoredByGit)).toEqual([]);
  });

  it('keeps secrets out of the file: no secret variable in environment:, no ${…} interpolation at all', () => {
    const inClear = services.flatMap((candidate) => candidate.environment.filter((name) => SECRETS.includes(name)).map((name) => `${candidate.name}: ${name}`));
    expect(inClear).toEqual([]);
    // `${X:?}` breaks logs/exec/down when X is not exported; any `${X}` needs a shell export, which env files replace
    expect(composeText.split('\n').filter((line) => !line.trim().startsWith('#') && line.includes('${'))).toEqual([]);
  });

  it('builds the image once: one service builds sigil:local, the other Sigil services only name it', () => {
    const builders = services.filter((candidate) => candidate.build !== undefined);
    expect(builders.map((candidate) => [candidate.name, candidate.image])).toEqual([['issuer', 'sigil:local']]);
    expect(service('orders-api').image).toBe('sigil:local');
    expect(service('reports-api').image).toBe('sigil:local');
    // a service naming the built image must depend on its builder, or `up <service>` alone would try to pull it
    for (const name of ['orders-api', 'reports-api']) expect(service(name).dependsOn.has('issuer')).toBe(true);
  });

  it('runs each service from its own entry file in the image (the image CMD is the issuer)', () => {
    expect(service('issuer').command).toBeUndefined();
    expect(fs.readFileSync(path.join(root, 'Dockerfile'), 'utf8')).toContain('CMD ["node", "services/issuer/dist/main.js"]');
    expect(service('orders-api').command).toEqual(['node', 'services/orders-api/dist/main.js']);
    expect(service('reports-api').command).toEqual(['node', 'services/reports-api/dist/main.js']);
    for (const name of ['issuer', 'orders-api', 'reports-api']) expect(fs.existsSync(path.join(root, 'services', name, 'src', 'main.ts'))).toBe(true);
  });

  it('starts in order: every depends_on target exists, and waits on a healthcheck where service_healthy is used', () => {
    const problems = services.flatMap((candidate) =>
      [...candidate.dependsOn].flatMap(([target, condition]) => {
        const found = services.find((other) => other.name === target);
        if (found === undefined) return [`${candidate.name} -> ${target}: no such service`];
        if (condition === 'service_healthy' && found.healthcheck === undefined) return [`${candidate.name} -> ${target}: no healthcheck`];
        return [];
      }),
    );
    expect(problems).toEqual([]);
    expect(service('issuer').dependsOn.get('postgres')).toBe('service_healthy');
    expect(service('orders-api').dependsOn.get('issuer')).toBe('service_healthy');
    expect(service('reports-api').dependsOn.get('issuer')).toBe('service_healthy');
  });
});

describe('the lists of variables the services read', () => {
  it('are what the resource services\' readers ask the environment for', () => {
    expect(namesRead((env) => resourceServiceConfig(env, { port: 4001, audience: 'http://localhost:4001' })).sort()).toEqual([...RESOURCE_SERVICE_VARIABLES].sort());
    expect(namesRead((env) => reportsConfig(env)).sort()).toEqual([...REPORTS_VARIABLES].sort());
  });

  it('name the issuer\'s secrets among what it reads', () => {
    expect(ISSUER_VARIABLES).toEqual(expect.arrayContaining(['COOKIE_KEYS', 'KEYS_ENCRYPTION_KEY', 'DATABASE_URL', 'KEY_STORE', 'ISSUER']));
  });
});
