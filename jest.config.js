/** Unit tests run on the TypeScript sources; real-system tests spawn the built daemon in dist/. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }] },
  testTimeout: 30000,
  setupFiles: ['<rootDir>/test/support/env.js'],
  globalSetup: '<rootDir>/test/support/setup.js',
  globalTeardown: '<rootDir>/test/support/teardown.js',
  testSequencer: '<rootDir>/test/support/sequencer.js',
  reporters: ['default', '<rootDir>/test/support/summaryReporter.js'],
};
