/**
 * Strings that match a JSON Schema `pattern`, for generated payloads. faker's fromRegExp has no groups
 * or alternation, which slug and version patterns need, so this is a small generator of its own:
 * literals, escapes (\d \w \s and their negations), classes and ranges, groups (capturing, (?:)),
 * alternation, quantifiers (? * + {n} {n,} {n,m}, lazy forms). Anchors and \b are assertions and emit
 * nothing; lookarounds and back-references are not supported (compilePattern throws).
 */
export type Pick = (min: number, max: number) => number

type Node =
  | {kind: 'chars'; set: string}
  | {kind: 'seq'; items: Node[]}
  | {kind: 'alt'; options: Node[]}
  | {kind: 'repeat'; node: Node; min: number; max: number}

const PRINTABLE = Array.from({length: 95}, (_, i) => String.fromCharCode(32 + i)).join('')
const DIGITS = '0123456789'
const WORD = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_'
const SPACE = ' '
/** How far an open quantifier (*, +, {n,}) may go past its minimum. */
const OPEN_EXTRA = 6

function complement(set: string): string {
  let out = ''
  for (const c of PRINTABLE) if (!set.includes(c)) out += c
  return out
}

class Parser {
  private i = 0
  constructor(private readonly src: string) {}

  parse(): Node {
    const node = this.alternation()
    if (this.i < this.src.length) throw new Error(`unexpected "${this.src[this.i]}" at ${this.i}`)
    return node
  }

  private alternation(): Node {
    const options: Node[] = [this.sequence()]
    while (this.src[this.i] === '|') {
      this.i++
      options.push(this.sequence())
    }
    return options.length === 1 ? options[0] : {kind: 'alt', options}
  }

  private sequence(): Node {
    const items: Node[] = []
    while (this.i < this.src.length && this.src[this.i] !== '|' && this.src[this.i] !== ')') {
      const atom = this.atom()
      if (atom) items.push(this.quantified(atom))
    }
    return {kind: 'seq', items}
  }

  private atom(): Node | null {
    const c = this.src[this.i++]
    switch (c) {
      case '^':
      case '$':
        return null
      case '.':
        return {kind: 'chars', set: PRINTABLE}
      case '(': {
        if (this.src[this.i] === '?') {
          const next = this.src[this.i + 1]
          if (next !== ':') throw new Error('lookarounds and named groups are not supported')
          this.i += 2
        }
        const inner = this.alternation()
        if (this.src[this.i++] !== ')') throw new Error('unclosed group')
        return inner
      }
      case '[':
        return {kind: 'chars', set: this.charClass()}
      case '\\': {
        const escaped = this.escape()
        return escaped === null ? null : {kind: 'chars', set: escaped}
      }
      default:
        return {kind: 'chars', set: c}
    }
  }

  /** The characters an escape stands for; null for assertions (\b, \B). */
  private escape(): string | null {
    const c = this.src[this.i++]
    switch (c) {
      case 'd':
        return DIGITS
      case 'D':
        return complement(DIGITS)
      case 'w':
        return WORD
      case 'W':
        return complement(WORD)
      case 's':
        return SPACE
      case 'S':
        return complement(' \t\n\r')
      case 'b':
      case 'B':
        return null
      case 'n':
        return '\n'
      case 't':
        return '\t'
      case 'r':
        return '\r'
      case 'u': {
        const hex = this.src.slice(this.i, this.i + 4)
        this.i += 4
        return String.fromCharCode(parseInt(hex, 16))
      }
      case 'x': {
        const hex = this.src.slice(this.i, this.i + 2)
        this.i += 2
        return String.fromCharCode(parseInt(hex, 16))
      }
      default:
        if (c !== undefined && /[1-9]/.test(c)) throw new Error('back-references are not supported')
        return c ?? '\\'
    }
  }

  private charClass(): string {
    let negate = false
    if (this.src[this.i] === '^') {
      negate = true
      this.i++
    }
    let set = ''
    let first = true
    while (this.i < this.src.length && (this.src[this.i] !== ']' || first)) {
      first = false
      let from: string
      if (this.src[this.i] === '\\') {
        this.i++
        const escaped = this.escape() ?? ''
        if (escaped.length !== 1) {
          set += escaped
          continue
        }
        from = escaped
      } else {
        from = this.src[this.i++]
      }
      if (this.src[this.i] === '-' && this.src[this.i + 1] !== ']' && this.i + 1 < this.src.length) {
        this.i++
        let to = this.src[this.i++]
        if (to === '\\') to = this.escape() ?? to
        for (let code = from.charCodeAt(0); code <= to.charCodeAt(0); code++) set += String.fromCharCode(code)
      } else {
        set += from
      }
    }
    if (this.src[this.i++] !== ']') throw new Error('unclosed character class')
    return negate ? complement(set) : set
  }

  private quantified(node: Node): Node {
    const c = this.src[this.i]
    let min: number
    let max: number
    if (c === '?') [min, max] = [0, 1]
    else if (c === '*') [min, max] = [0, OPEN_EXTRA]
    else if (c === '+') [min, max] = [1, 1 + OPEN_EXTRA]
    else if (c === '{') {
      const match = /^\{(\d+)(,(\d*))?\}/.exec(this.src.slice(this.i))
      if (!match) return node
      min = Number(match[1])
      max = match[2] === undefined ? min : match[3] === '' ? min + OPEN_EXTRA : Number(match[3])
      this.i += match[0].length - 1
    } else return node
    this.i++
    if (this.src[this.i] === '?' || this.src[this.i] === '+') this.i++ // lazy / possessive: same strings
    return {kind: 'repeat', node, min, max}
  }
}

export type PatternGenerator = (pick: Pick) => string

/** Compiles once; each call of the result draws a new matching string with `pick`. */
export function compilePattern(pattern: string): PatternGenerator {
  const ast = new Parser(pattern).parse()
  const emit = (node: Node, pick: Pick): string => {
    switch (node.kind) {
      case 'chars':
        return node.set.length === 0 ? '' : node.set[pick(0, node.set.length - 1)]
      case 'seq': {
        let out = ''
        for (const item of node.items) out += emit(item, pick)
        return out
      }
      case 'alt':
        return emit(node.options[pick(0, node.options.length - 1)], pick)
      case 'repeat': {
        let out = ''
        const n = pick(node.min, node.max)
        for (let k = 0; k < n; k++) out += emit(node.node, pick)
        return out
      }
    }
  }
  return (pick) => emit(ast, pick)
}
