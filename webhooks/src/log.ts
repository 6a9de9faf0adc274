/** Structured JSON logs on stderr (winston), one object per line, component "webhook". */
import winston from 'winston';

export type Logger = winston.Logger;

export function jsonLogger(level = 'info', stream: NodeJS.WritableStream = process.stderr): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'webhook' },
    // winston types its transports as constructor interfaces, not classes: the instance is a real TransportStream
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [new winston.transports.Stream({ stream })],
  });
}
