/**
 * An ingress rule's `path` is a Go RE2 regular expression, matched (unanchored) against the request path.
 * This turns it into a JavaScript RegExp with the same meaning for the syntax both share, translates the
 * few RE2 spellings JavaScript lacks, and refuses JavaScript-only constructs RE2 would reject.
 */

/** Constructs JavaScript accepts but RE2 (and so cloudflared) does not. */
const JS_ONLY: { pattern: RegExp; what: string }[] = [
  { pattern: /\(\?<?[=!]/, what: 'look-ahead/look-behind assertions' },
  { pattern: /(^|[^\\])(\\\\)*\\[1-9]/, what: 'back-references such as \\1' },
  { pattern: /(^|[^\\])(\\\\)*\\k</, what: 'named back-references (\\k<name>)' },
];

const cache = new Map<string, RegExp>();

/** Compiles a rule's path regex; throws an Error saying what is wrong when cloudflared could not compile it. */
export function compileIngressPath(source: string): RegExp {
  const cached = cache.get(source);
  if (cached) return cached;
  for (const { pattern, what } of JS_ONLY) {
    if (pattern.test(source)) throw new Error(`RE2 does not support ${what}`);
  }
  let body = source;
  let flags = '';
  const leadingFlags = /^\(\?([imsU]+)\)/.exec(body);
  if (leadingFlags) {
    const requested = leadingFlags[1] ?? '';
    if (requested.includes('U')) throw new Error('the ungreedy flag (?U) has no equivalent here; write lazy quantifiers such as .*? instead');
    flags = [...new Set(requested)].join('');
    body = body.slice(leadingFlags[0].length);
  }
  if (/\(\?[a-zA-Z-]+[:)]/.test(body)) throw new Error('inline flags are only supported at the very start, e.g. (?i)^/api');
  body = body.replace(/\(\?P</g, '(?<').replace(/\\A/g, '^').replace(/\\z/g, '(?![\\s\\S])');
  let compiled: RegExp;
  try {
    compiled = new RegExp(body, flags);
  } catch (error) {
    throw new Error(error instanceof Error ? error.message.replace(/^Invalid regular expression: /, '') : String(error));
  }
  if (cache.size > 1000) cache.clear();
  cache.set(source, compiled);
  return compiled;
}
