import { pino, type Logger as PinoLogger } from 'pino';

import type { LogLevel } from './config.js';

export type Logger = PinoLogger;

/** JSON logs on stdout. Secrets, tokens and passwords are never logged (docs/security.md#secrets-at-rest, K4). */
export function createLogger(level: LogLevel): Logger {
  return pino({
    level,
    base: { service: 'sigil-issuer' },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.client_secret', '*.password', '*.key'],
      remove: true,
    },
  });
}
