/** Structured JSON logs on stderr (winston); each line of a reconcile carries its key and kind. */
import winston from 'winston';

export function jsonLogger(level = 'info', stream: NodeJS.WritableStream = process.stderr): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component: 'operator' },
    // winston types its transports as constructor interfaces, not classes: the instance is a real TransportStream
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [new winston.transports.Stream({ stream })],
  });
}
