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
  const segments = body.split('.')
  let source = ''
  segments.forEach((segment, index) => {
    if (segment === '**') {
      // Zero or more whole segments, with the separator they need.
      source += index === 0 ? '(?:[^.]+\\.)*' : index === segments.length - 1 ? '(?:\\.[^.]+)*' : '(?:\\.[^.]+)*'
      return
    }
    if (index > 0 && segments[index - 1] !== '**') source += '\\.'
    else if (index > 0 && segments[index - 1] === '**' && index - 1 > 0) source += '\\.'
    source += segment
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
    if (/[*?]/.test(glob)) patterns.push(glob)
    else exact.add(glob.trim())
  }
  if (patterns.length === 0) return (type) => exact.has(type)
  const regex = new RegExp(typeGlobsToRegExpSource(patterns))
  return (type) => exact.has(type) || regex.test(type)
}
