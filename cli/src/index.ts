export { run, help, version } from './main.ts';
export { CliError } from './errors.ts';
export type { CliIO } from './io.ts';
