/**
 * "Did you mean ...?" for every name a user types: commands, flags, scenario names and fields,
 * event types. One place, so every part suggests alike. Here on the ground floor because the
 * catalog, the simulator and the CLI all use it.
 */

/** Edit distance with adjacent transpositions (optimal string alignment): "stedy"/"steady" 1, "lsit"/"list" 1. */
export function editDistance(a: string, b: string): number {
  const rows: number[][] = Array.from({length: a.length + 1}, (_, i) => [i, ...Array<number>(b.length).fill(0)])
  for (let j = 1; j <= b.length; j++) rows[0][j] = j
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      rows[i][j] = Math.min(rows[i - 1][j] + 1, rows[i][j - 1] + 1, rows[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) rows[i][j] = Math.min(rows[i][j], rows[i - 2][j - 2] + 1)
    }
  }
  return rows[a.length][b.length]
}

export interface ClosestOptions {
  /** How many names at most (default 1). */
  limit?: number
  /** Largest edit distance still suggested (default: a third of the name's length, at least 1). */
  maxDistance?: number
  /** A name containing the input, or contained in it, counts as very close ("liked" -> "social.content.liked"). */
  substrings?: boolean
}

/** The known names closest to `input` (case-insensitive), best first; [] when none is close. */
export function closest(input: string, candidates: Iterable<string>, options: ClosestOptions = {}): string[] {
  const lower = input.toLowerCase()
  const max = options.maxDistance ?? Math.max(1, Math.floor(input.length / 3))
  const scored: Array<{name: string; d: number}> = []
  for (const name of new Set(candidates)) {
    const other = name.toLowerCase()
    if (name === input) continue
    const d = options.substrings && lower.length > 0 && (other.includes(lower) || lower.includes(other)) ? 0.5 : editDistance(lower, other)
    if (d <= max) scored.push({name, d})
  }
  return scored
    .sort((x, y) => x.d - y.d || x.name.localeCompare(y.name))
    .slice(0, options.limit ?? 1)
    .map((x) => x.name)
}

/** " Did you mean X?" / " Did you mean X or Y?", or "" : for the end of a message. */
export function didYouMean(suggestions: readonly string[], quote: (name: string) => string = (name) => name): string {
  if (suggestions.length === 0) return ''
  const names = suggestions.map(quote)
  return ` Did you mean ${names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names.at(-1)}`}?`
}
