/**
 * Topic patterns: an exact topic name, or a pattern where `*` matches any run of characters,
 * dots included (`nginx.*` matches `nginx.instance.added`; `*` matches every topic).
 */
export type TopicMatcher = (topic: string) => boolean;

const VALID = /^[A-Za-z0-9_.*-]+$/;

/** Throws a clear error for a malformed pattern (empty, spaces, characters outside `[A-Za-z0-9_.*-]`). */
export function compilePattern(pattern: string): TopicMatcher {
  if (!VALID.test(pattern)) {
    throw new Error(
      `invalid topic pattern ${JSON.stringify(pattern)}: use letters, digits, '.', '_', '-' and '*' (for example "nginx.*")`,
    );
  }
  if (pattern === '*') return () => true;
  if (!pattern.includes('*')) return (t) => t === pattern;
  const parts = pattern.split('*');
  if (parts.length === 2 && parts[1] === '') {
    const prefix = parts[0];
    return (t) => t.startsWith(prefix);
  }
  const re = new RegExp(`^${parts.map((p) => p.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*')}$`);
  return (t) => re.test(t);
}

export function matchesAny(patterns: readonly string[], topic: string): boolean {
  return patterns.some((p) => compilePattern(p)(topic));
}
