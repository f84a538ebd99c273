import { describe, expect, it } from '@jest/globals';

import { protectKids } from '../../src/cli/main.js';

const dashKid = '-XjM3E0x4jUkaJ_unZ2HiHzAnA3GvuMEFK6MD1XGd1g';

describe('protectKids', () => {
  it('when a kid begins with "-", moves it behind "--" so it is read as the argument', () => {
    expect(protectKids(['keys', 'retire', dashKid, '--json'])).toEqual(['keys', 'retire', '--json', '--', dashKid]);
    expect(protectKids(['keys', 'retire', '--json', dashKid])).toEqual(['keys', 'retire', '--json', '--', dashKid]);
  });

  it('leaves everything else alone', () => {
    expect(protectKids(['keys', 'retire', 'AXjM3E0x4jUkaJ_unZ2HiHzAnA3GvuMEFK6MD1XGd1g'])).toEqual(['keys', 'retire', 'AXjM3E0x4jUkaJ_unZ2HiHzAnA3GvuMEFK6MD1XGd1g']);
    expect(protectKids(['keys', 'retire', '--', dashKid])).toEqual(['keys', 'retire', '--', dashKid]);
    expect(protectKids(['clients', 'create', '--name', dashKid])).toEqual(['clients', 'create', '--name', dashKid]);
    expect(protectKids(['keys', 'retire', '--bogus'])).toEqual(['keys', 'retire', '--bogus']);
  });
});
