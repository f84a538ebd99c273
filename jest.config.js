/** One jest run over every workspace; each workspace has its own project config. */
export default {
  projects: ['<rootDir>/services/*/jest.config.js'],
  // suites boot a real issuer against a real database
  testTimeout: 60_000,
};
