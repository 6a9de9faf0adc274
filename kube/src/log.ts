/** Structured JSON logs (winston), one object per line, each carrying the process's component name. */
import winston from 'winston';

export function createJsonLogger(component: string, level = 'info', stream: NodeJS.WritableStream = process.stderr): winston.Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { component },
    // winston types its transports as constructor interfaces, not classes: the instance is a real TransportStream
    // eslint-disable-next-line @typescript-eslint/no-unsafe-class-instance-assignment
    transports: [new winston.transports.Stream({ stream })],
  });
}
