import { z } from 'zod';

function valueAt(raw: unknown, path: (string | number)[]): unknown {
  let node: unknown = raw;
  for (const key of path) {
    if (node === null || typeof node !== 'object') return undefined;
    node = Reflect.get(node, key);
  }
  return node;
}

function keyName(path: (string | number)[]): string {
  return path.reduce<string>((name, key) => (typeof key === 'number' ? `${name}[${key}]` : name ? `${name}.${key}` : key), '');
}

/** One problem of a configuration as the operator reads it: the key, the value found there, the form expected. */
export function describeIssue(issue: z.ZodIssue, raw: unknown): { key: string; found: unknown; expected: string } {
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    const unknownKey = issue.keys[0] ?? '';
    const key = keyName([...issue.path, unknownKey]);
    return { key, found: valueAt(raw, [...issue.path, unknownKey]), expected: 'no such key (remove it or check its spelling in docs/configuration.md)' };
  }
  const found = valueAt(raw, issue.path);
  let expected = issue.message;
  if (issue.code === z.ZodIssueCode.invalid_type) {
    expected = issue.received === 'undefined' ? `a value of type ${issue.expected} (the key is required)` : `a value of type ${issue.expected}`;
  } else if (issue.code === z.ZodIssueCode.invalid_enum_value) {
    expected = `one of ${issue.options.map((option) => JSON.stringify(option)).join(', ')}`;
  }
  return { key: keyName(issue.path) || '(top level)', found, expected };
}
