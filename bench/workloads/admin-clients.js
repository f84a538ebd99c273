// @ts-check
/**
 * Provisioning clients: `admin_create_clients` drives `POST /admin/v1/clients` (the HTTP admin
 * API, authenticated by an admin API access token) at full load with autocannon, a new client
 * in every request's body, and reports clients created per second (201s only). Its baseline,
 * `admin_create_clients_command`, runs the same `clients.create` admin command without HTTP, as
 * the CLI does (in the bench process against PostgreSQL; through the issuer's admin socket with
 * --embedded), as many at a time for as long. Both write the same rows (the client and its
 * audit event, in one transaction) and set off the same change notification, so the ratio is
 * what the admin API adds: HTTP and express, the token's verification (its signature, a
 * revocation query, its client's lookup) and the JSON answer.
 */
import { ADMIN_API_PATH, machineClientBody } from '../lib/admin.js';
import { cpuPerRequest, readCpu } from '../lib/cpu.js';
import { inFlightFor } from '../lib/inprocess.js';
import { measure } from '../lib/load.js';
import { progress } from '../lib/log.js';
import { openCommandPath } from '../lib/provision.js';
import { ARGON2, AUDIENCE, cpuProbes, ISSUER_DIST } from '../setup.js';
import { addHttpRow, addInProcessRow, labelOf } from './measure.js';

/** @type {import('./measure.js').RowSpec} */
export const adminCreateClientsCommand = {
  id: 'admin_create_clients_command',
  label: (options) => `baseline: clients.create command, ${options.embedded ? 'admin socket' : 'in process'} (clients/s)`,
  baseline: null,
  run: async (context) => {
    const { options, stack } = context;
    const { shape } = options;
    const commands = await openCommandPath({
      issuerDist: ISSUER_DIST,
      databaseUrl: options.embedded ? undefined : stack.issuerEnv['DATABASE_URL'],
      dataDir: stack.issuerEnv['DATA_DIR'] ?? '',
      argon2: ARGON2,
      log: progress,
    });
    progress(`${labelOf(adminCreateClientsCommand, options)}: ${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, ${shape.connections} in flight`);
    let next = 0;
    // the command's own input names (`scopes`, a list), the same client as the admin API row's body
    const create = () => commands.create({ name: `bench-command-${(next += 1)}`, grants: ['client_credentials'], scopes: ['orders:read'], resources: [AUDIENCE] });
    try {
      await inFlightFor(shape.warmupSeconds * 1000, shape.connections, create);
      // the issuer's CPU too: it receives every creation's change notification, as in the admin API row
      const probes = cpuProbes(stack, stack.urls.issuer);
      const before = readCpu(probes);
      const result = await inFlightFor(shape.seconds * 1000, shape.connections, create);
      // read before the pool closes: the CPU of a PostgreSQL backend that has ended is unknown
      const split = cpuPerRequest(before, readCpu(probes), result.ops);
      const perClient = split === null ? null : { benchProcess: split['loadGenerator'] ?? 0, server: split['server'] ?? 0, postgres: split['postgres'] ?? 0 };
      // PostgreSQL: the command runs in the bench process, so its CPU counts; embedded: the bench process only sends it to the issuer
      const cpuMsPerOp = perClient === null ? null : perClient.server + perClient.postgres + (commands.inBenchProcess ? perClient.benchProcess : 0);
      addInProcessRow(context, adminCreateClientsCommand, { ...result, cpuMsPerOp }, { ...result, path: commands.path, inFlight: shape.connections, cpuMsPerRequest: perClient, benchProcessCounted: commands.inBenchProcess });
    } finally {
      await commands.close();
    }
  },
};

/** @type {import('./measure.js').RowSpec} */
export const adminCreateClients = {
  id: 'admin_create_clients',
  label: 'admin API: POST /admin/v1/clients (clients created/s)',
  baseline: 'admin_create_clients_command',
  needs: 'admin_create_clients_command',
  run: async (context) => {
    const { options, stack, requests } = context;
    const { shape } = options;
    let next = 0;
    /** @type {import('./measure.js').Workload} */
    const workload = {
      url: `${stack.urls.issuer}${ADMIN_API_PATH}/clients`,
      method: 'POST',
      headers: requests.admin,
      // a client of its own in every request (warm-up included)
      setupRequest: (request) => ({ ...request, body: machineClientBody(`bench-api-${(next += 1)}`, AUDIENCE) }),
    };
    progress(`${labelOf(adminCreateClients, options)}: ${shape.warmupSeconds} s warm-up, ${shape.seconds} s measured, ${shape.connections} connections`);
    const result = await measure({ ...workload, cpu: cpuProbes(stack, workload.url) }, shape);
    // only a 201 created a client: the rate counts those, and any other answer is a failure (non-2xx column)
    const created = result.statusCodes['201'] ?? 0;
    const notCreated = result.total - created;
    addHttpRow(context, adminCreateClients, workload, { ...result, reqPerSec: created / result.seconds, non2xx: notCreated }, {
      created,
      responsesPerSec: result.reqPerSec,
      warmupCreated: result.warmup.statusCodes['201'] ?? 0,
    });
  },
};
