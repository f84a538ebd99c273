import { describe, expect, it } from '@jest/globals';

import { sweepAuditTrail } from '../../src/domain/audit.js';
import { backends } from '../support/backends.js';
import { storageSuite } from '../support/storage.js';

describe.each(backends)('audit trail retention ($name)', (backend) => {
  const suite = storageSuite(backend);

  it('when events are older than AUDIT_RETENTION_DAYS, the sweep removes exactly those and says how many', async () => {
    const { stores, database } = suite;
    const now = new Date('2026-12-01T12:00:00Z');
    const day = 24 * 3600 * 1000;
    for (const [username, age] of [['old-1', 91], ['old-2', 400], ['kept', 89], ['today', 0]] as const) {
      await stores.audit.append({ event: 'login.failure', username });
      await database.knex('auth_events').where({ username }).update({ at: new Date(now.getTime() - age * day) });
    }
    expect(await sweepAuditTrail(stores.audit, 90, now)).toBe(2);
    const left = await database.knex('auth_events').orderBy('username').pluck('username');
    expect(left).toEqual(['kept', 'today']);
    expect(await sweepAuditTrail(stores.audit, 90, now)).toBe(0);
  });
});
