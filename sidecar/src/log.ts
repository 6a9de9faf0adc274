/** Structured JSON logs on stderr (winston). One logger per process; sessions add their fields. */
import winston from 'winston';

export type Logger = winston.Logger;

export function createLogger(level = process.env['AIRLOCK_LOG_LEVEL'] ?? 'info', stream: NodeJS.WritableStream = process.stderr): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    // winston types its transports as constructor interfaces, not classes: the instance is a real TransportStream
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [new winston.transports.Stream({ stream })],
  });
}

/** A logger that drops everything (tests that do not look at logs). */
export function silentLogger(): Logger {
  return winston.createLogger({ silent: true });
}
