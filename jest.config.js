/** One jest run over every workspace; each workspace has its own project config. */
export default {
  projects: ['<rootDir>/services/*/jest.config.js'],
  // suites boot a real issuer against a real database
  testTimeout: 60_000,
  // two suites at once even on two cores (jest's default there is one): most of a suite's time is
  // spent waiting on the processes, the database and the network it drives, not computing
  maxWorkers: 2,
};
