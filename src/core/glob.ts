/**
 * Event type globs, as operators write them ("knowledge.*", "social.content.liked").
 *
 * Types are dot-separated segments. The rules:
 * - a literal segment matches itself;
 * - `*` matches exactly one segment (or part of one: "content.lik*");
 * - `**` matches any number of segments, including none ("knowledge.**.posted");
 * - a TRAILING `.*` means "this prefix and anything below it", because "knowledge.*" is how an
 *   operator names a whole domain: it matches "knowledge.question.posted", not "knowledge" itself;
 * - `*` alone (or `**`) matches every type.
 *
 * The matcher is a plain regular expression (no lookaround), so the MongoDB adapter can send the
 * very same pattern as `$regex` (see typeGlobsToRegExpSource) and both backends agree by construction.
 */

function escapeRegExp(text: string): string {
  return text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&')
}

/** The regular expression source (anchored) for one glob. */
export function typeGlobToRegExpSource(glob: string): string {
  const trimmed = glob.trim()
  if (trimmed === '') throw new Error('An event type glob cannot be empty')
  if (trimmed === '*' || trimmed === '**') return '^.*$'
  let body = trimmed
  let suffix = ''
  if (body.endsWith('.*') && !body.endsWith('.**')) {
    body = body.slice(0, -2)
    suffix = '\\..+'
  }
  // "a.**.**.b" means "a.**.b"; a body of only "**" before ".*" matches everything anyway.
  const segments = body.split('.').filter((segment, i, all) => !(segment === '**' && all[i - 1] === '**'))
  if (segments.length === 1 && segments[0] === '**') return '^.*$'
  let source = ''
  segments.forEach((segment, index) => {
    const first = index === 0
    if (segment === '**') {
      // Any number of whole segments (none included), carrying the separators they need.
      source += first ? '(?:[^.]+\\.)*' : '(?:\\.[^.]+)*'
      return
    }
    // A separator before this segment, unless a leading "**." already ended with one.
    if (!first && !(index === 1 && segments[0] === '**')) source += '\\.'
    source +=
      segment === '*'
        ? '[^.]+'
        : segment
            .split('*')
            .map((part) => part.split('?').map(escapeRegExp).join('[^.]'))
            .join('[^.]*')
  })
  return `^${source}${suffix}$`
}

/** One anchored source matching any of the globs (for a backend's regex query). */
export function typeGlobsToRegExpSource(globs: readonly string[]): string {
  if (globs.length === 0) throw new Error('At least one event type glob is needed')
  return globs.map((glob) => `(?:${typeGlobToRegExpSource(glob)})`).join('|')
}

/** A predicate true when `type` matches any of the globs. An empty list matches everything. */
export function compileTypeGlobs(globs: readonly string[]): (type: string) => boolean {
  if (globs.length === 0) return () => true
  const exact = new Set<string>()
  const patterns: string[] = []
  for (const glob of globs) {
    if (glob.trim() === '') throw new Error('An event type glob cannot be empty')
    if (/[*?]/.test(glob)) patterns.push(glob)
    else exact.add(glob.trim())
  }
  if (patterns.length === 0) return (type) => exact.has(type)
  const regex = new RegExp(typeGlobsToRegExpSource(patterns))
  return (type) => exact.has(type) || regex.test(type)
}
