/** Reading sysfs attribute files: async (sysfs reads can stall on some drivers), errors turned into reasons. */
import fs from 'node:fs/promises';
import path from 'node:path';

export type Read<T> = { ok: true; value: T } | { ok: false; reason: string };

export async function readText(file: string): Promise<Read<string>> {
  try {
    return { ok: true, value: (await fs.readFile(file, 'utf8')).trim() };
  } catch (error) {
    return { ok: false, reason: describeReadError(file, error) };
  }
}

/** Reads an integer attribute (sysfs power, energy, voltage and current files hold integers in micro or milli units). */
export async function readInteger(file: string): Promise<Read<number>> {
  const text = await readText(file);
  if (!text.ok) return text;
  const value = Number(text.value);
  if (text.value === '' || !Number.isFinite(value)) return { ok: false, reason: `${file} holds '${text.value.slice(0, 40)}', not a number` };
  return { ok: true, value };
}

function describeReadError(file: string, error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied reading ${file}`;
  if (code === 'ENOENT') return `${file} does not exist`;
  if (code === 'ENODATA' || code === 'EAGAIN' || code === 'EIO') return `the driver gave no data for ${file} (${code})`;
  return `cannot read ${file}: ${(error as Error).message}`;
}

/** Directory entries, or [] when the directory does not exist. */
export async function list(dir: string): Promise<string[]> {
  try {
    return (await fs.readdir(dir)).sort(naturalOrder);
  } catch {
    return [];
  }
}

export async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}

export function join(...parts: string[]): string {
  return path.join(...parts);
}

/** hwmon2 before hwmon10. */
export function naturalOrder(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}
