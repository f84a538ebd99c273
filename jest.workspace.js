/**
 * The jest project shared by every workspace: TypeScript through @swc/jest as ES modules
 * (ENGINE-NOTES), `./x.js` imports resolved to their `.ts` sources, and the guard mapped to
 * its sources so that no test runs a stale build.
 * @param {string} name
 * @returns {import('jest').Config}
 */
export function workspaceProject(name) {
  return {
    displayName: name,
    testEnvironment: 'node',
    extensionsToTreatAsEsm: ['.ts'],
    transform: {
      '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'es6' } }],
    },
    moduleNameMapper: {
      '^@sigil/guard$': '<rootDir>/../guard/src/index.ts',
      '^(\\.{1,2}/.*)\\.js$': '$1',
    },
    testMatch: ['<rootDir>/test/**/*.test.ts'],
  };
}
