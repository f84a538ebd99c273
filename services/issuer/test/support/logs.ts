import type { LogLevel } from '../../src/config.js';
import { createLogger, type Logger } from '../../src/logger.js';

/** Every line a logger wrote, as written (one JSON object each). */
export interface CapturedLogs {
  readonly lines: readonly string[];
  /** The issuer's own logger (its level, serializers and redaction), writing into `lines` instead of stdout. */
  logger(level: LogLevel): Logger;
}

/**
 * The real logger of `createLogger`, its output kept in memory: pino serializes and redacts
 * each line, then hands it to an in-memory destination instead of stdout.
 */
export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  const memory = { write: (line: string) => void lines.push(line) };
  return {
    lines,
    logger(level) {
      return createLogger(level, memory);
    },
  };
}
