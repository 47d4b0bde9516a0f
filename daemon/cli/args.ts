/** Command-line parsing shared by the subcommands: node's parseArgs, with errors turned into coded usage errors. */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EdgerunError } from '../errors.ts';

export function parseCommandArgs<T extends NonNullable<ParseArgsConfig['options']>>(command: string, args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun ${command}: ${(error as Error).message}`, { command }, { cause: error });
  }
}

/** Parses `NAME=VALUE` items (repeatable flags such as --input). */
export function parseNamedValues(command: string, flag: string, items: string[] | undefined): Map<string, string> {
  const result = new Map<string, string>();
  for (const item of items ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0 || eq === item.length - 1) {
      throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun ${command}: --${flag} expects NAME=VALUE, got '${item}'`, { command, flag, item });
    }
    const name = item.slice(0, eq);
    if (result.has(name)) {
      throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun ${command}: --${flag} gives '${name}' twice`, { command, flag, item });
    }
    result.set(name, item.slice(eq + 1));
  }
  return result;
}

/** Parses a shape written as `1x3x48x320` or `1,3,48,320`. */
export function parseShape(command: string, text: string, what: string): number[] {
  if (text === '' || text === 'scalar') return [];
  const parts = text.split(/[x,]/);
  const dims = parts.map(Number);
  if (dims.some((d) => !Number.isInteger(d) || d < 0 || d > 2 ** 31 - 1)) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun ${command}: ${what}: '${text}' is not a shape like 1x3x224x224`, { command, value: text });
  }
  return dims;
}

export function parsePositiveInt(command: string, flag: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < 1) {
    throw new EdgerunError('EDGERUN_ERR_CLI_USAGE', `edgerun ${command}: --${flag} must be a positive integer, got '${text}'`, { command, flag, value: text });
  }
  return value;
}
