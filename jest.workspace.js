/**
 * The jest project shared by every workspace: TypeScript through @swc/jest as ES modules
 * (jest runs them with --experimental-vm-modules), `./x.js` imports resolved to their `.ts`
 * sources, and the guard and the resource kit mapped to their sources so that no test runs a
 * stale build.
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
      '^@sigil/resource-kit$': '<rootDir>/../resource-kit/src/index.ts',
      '^(\\.{1,2}/.*)\\.js$': '$1',
    },
    testMatch: ['<rootDir>/test/**/*.test.ts'],
  };
}
