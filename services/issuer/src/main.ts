import { ConfigError, loadConfig } from './config.js';
import { KeyStoreError } from './keys/key-store.js';
import { createLogger } from './logger.js';
import { DataDirInUseError } from './storage/embedded-lock.js';

/** The only reader of process.env: configuration, then the issuer, then signals. */
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env, process.cwd(), 'serve');
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`sigil: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  // loaded after the configuration is checked, so a bad value prints one line and nothing else
  const { startIssuer } = await import('./server.js');
  let issuer;
  try {
    issuer = await startIssuer(config, logger);
  } catch (error) {
    if (error instanceof DataDirInUseError || error instanceof KeyStoreError) {
      process.stderr.write(`sigil: ${error.message}\n`);
      process.exit(1);
    }
    logger.fatal({ err: error }, 'failed to start');
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'stopping');
    issuer.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

await main();
