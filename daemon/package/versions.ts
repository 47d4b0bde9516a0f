/**
 * Model names and versions as the package format defines them: a name is `[A-Za-z0-9][A-Za-z0-9._-]*` (it becomes a
 * folder name and a URL path segment), a version is dotted numeric ("3", "1.4.2") compared part by part.
 */

export const MODEL_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
export const VERSION_PATTERN = /^\d+(\.\d+)*$/;
export const MAX_NAME_LENGTH = 128;
export const MAX_VERSION_LENGTH = 64;

export function isValidModelName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && MODEL_NAME_PATTERN.test(name);
}

export function isValidVersion(version: string): boolean {
  return version.length <= MAX_VERSION_LENGTH && VERSION_PATTERN.test(version);
}

/**
 * Orders two valid versions numerically part by part; a missing part counts as 0, so "1" equals "1.0" and
 * "1.02" equals "1.2". Parts are compared as digit strings, so no part is too large to compare exactly.
 * Returns a negative number, 0 or a positive number like Array.prototype.sort expects.
 */
export function compareVersions(a: string, b: string): number {
  const left = a.split('.');
  const right = b.split('.');
  for (let i = 0; i < Math.max(left.length, right.length); i++) {
    const order = compareDigits(left[i] ?? '0', right[i] ?? '0');
    if (order !== 0) return order;
  }
  return 0;
}

function compareDigits(a: string, b: string): number {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** The newest of some versions (undefined for none). */
export function newestVersion(versions: Iterable<string>): string | undefined {
  let newest: string | undefined;
  for (const version of versions) if (newest === undefined || compareVersions(version, newest) > 0) newest = version;
  return newest;
}
