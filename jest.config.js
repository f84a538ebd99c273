/** One jest run over every workspace; each workspace has its own project config. */
export default {
  projects: ['<rootDir>/services/*/jest.config.js'],
};
