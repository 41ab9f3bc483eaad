/**
 * The one place that decides colour and width for everything a command prints, so every command
 * follows one rule: colour only on a terminal, never with NO_COLOR; lines fit the terminal, or 80
 * columns when the output is not a terminal. Render functions take a Style (not process.stdout) so
 * tests can render for a terminal, a pipe, or any width.
 */
import {createRequire} from 'node:module'
import {stripVTControlCharacters} from 'node:util'
import type TableType from 'cli-table3'

type Table = InstanceType<typeof TableType>
// Loaded on first use: most commands print no table, and start-up time matters.
let TableCtor: typeof TableType | undefined
/**
 * cli-table3 paints through @colors/colors, which decides on its own from the environment (off
 * whenever CI is set, for one): when this module has decided on colour, it is switched on there.
 */
const newTable = (options: ConstructorParameters<typeof TableType>[0], color: boolean): Table => {
  const require = createRequire(import.meta.url)
  TableCtor ??= require('cli-table3') as typeof TableType
  if (color) (require('@colors/colors/safe') as {enable(): void}).enable()
  return new TableCtor(options)
}

/** What a Style needs to know about where the text goes (a WriteStream, or a test's stand-in). */
export interface OutputTarget {
  isTTY?: boolean
  columns?: number
}

export type Env = Record<string, string | undefined>

/**
 * Colour on or off for a stream: NO_COLOR (any value) turns it off (no-color.org); FORCE_COLOR
 * turns it on ("0"/"false" off), for CI logs that render ANSI; TERM=dumb and anything that is not
 * a TTY get none.
 */
export function colorEnabled(target: OutputTarget, env: Env = process.env): boolean {
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false
  const force = env.FORCE_COLOR
  if (force !== undefined) return !(force === '0' || force.toLowerCase() === 'false')
  if (env.TERM === 'dumb') return false
  return Boolean(target.isTTY)
}

/** The width to fit: the terminal's columns, or 80 when not a terminal (pipes, files, CI). */
export function terminalWidth(target: OutputTarget): number {
  return target.isTTY && target.columns && target.columns > 0 ? target.columns : 80
}

/** Text without ANSI escape sequences. */
export const stripAnsi = (s: string): string => stripVTControlCharacters(s)

/** Columns a line takes on screen (escape sequences take none; every code point one). */
export const visibleWidth = (s: string): number => [...stripAnsi(s)].length

/** Cuts a plain line to `width` columns, marking the cut with an ellipsis. */
export function truncate(s: string, width: number): string {
  const chars = [...s]
  if (chars.length <= width) return s
  return width <= 1 ? chars.slice(0, width).join('') : `${chars.slice(0, width - 1).join('')}…`
}

/**
 * Word-wraps plain text to `width`: the first line starts with `lead`, the others with `indent` (a
 * hanging indent). A word longer than a line (a path, a URL) is split across lines, not lost.
 */
export function wrap(text: string, width: number, indent = '', lead = ''): string[] {
  const lines: string[] = []
  let line = ''
  const start = () => (lines.length === 0 ? lead : indent)
  for (let word of text.split(/\s+/).filter(Boolean)) {
    if (line !== '' && visibleWidth(`${line} ${word}`) <= width) {
      line = `${line} ${word}`
      continue
    }
    if (line !== '') lines.push(line)
    line = `${start()}${word}`
    // Split what does not fit even on a line of its own.
    while (visibleWidth(line) > width) {
      const room = Math.max(1, width - visibleWidth(start()))
      const chars = [...word]
      lines.push(`${start()}${chars.slice(0, room).join('')}`)
      word = chars.slice(room).join('')
      line = `${start()}${word}`
    }
  }
  if (line !== '' || lines.length === 0) lines.push(line)
  return lines
}

/** A line of text fitted to `width`: it keeps its own indentation, and wraps two columns further in. */
export function fitLines(text: string, width: number): string[] {
  return text.split('\n').flatMap((line) => {
    if (visibleWidth(line) <= width) return [line]
    const lead = /^ */.exec(line)![0]
    return wrap(line, width, `${lead}  `, lead)
  })
}

const sgr = (open: number, close: number) => (on: boolean) => (s: string) => (on ? `\u001b[${open}m${s}\u001b[${close}m` : s)
const paint = {ok: sgr(32, 39), warn: sgr(33, 39), bad: sgr(31, 39), dim: sgr(90, 39), bold: sgr(1, 22)}

export interface Style {
  readonly color: boolean
  /** Columns to fit. */
  readonly width: number
  ok(s: string): string
  warn(s: string): string
  bad(s: string): string
  dim(s: string): string
  bold(s: string): string
  /** A boxed table whose head and borders follow the colour rule (cli-table3). */
  table(head?: string[], options?: {compact?: boolean}): Table
  /** A table fitted to the width: columns wider than their share are word-wrapped. */
  fitTable(head: string[], rows: string[][], options?: {compact?: boolean}): string
}

export function createStyle(target: OutputTarget = process.stdout, options: {env?: Env; color?: boolean; width?: number} = {}): Style {
  const color = options.color ?? colorEnabled(target, options.env)
  const width = options.width ?? terminalWidth(target)
  const tableOptions = (compact: boolean) => ({
    style: color ? {head: ['bold'], border: ['grey'], compact} : {head: [] as string[], border: [] as string[], compact},
  })
  const style: Style = {
    color,
    width,
    ok: paint.ok(color),
    warn: paint.warn(color),
    bad: paint.bad(color),
    dim: paint.dim(color),
    bold: paint.bold(color),
    table(head, opts = {}) {
      return newTable({...(head ? {head} : {}), ...tableOptions(opts.compact ?? false)}, color)
    },
    fitTable(head, rows, opts = {}) {
      const colWidths = fitColumns([head, ...rows], width)
      const table = newTable({head, ...tableOptions(opts.compact ?? false), ...(colWidths ? {colWidths, wordWrap: true, wrapOnWordBoundary: true} : {})}, color)
      for (const row of rows) table.push(row)
      return table.toString()
    },
  }
  return style
}

/**
 * Column widths (cell padding included) that make a boxed table fit `width`, or null when it fits
 * as it is: the widest columns give up space first, none below its longest word (or 6).
 */
export function fitColumns(rows: string[][], width: number): number[] | null {
  const cols = Math.max(...rows.map((r) => r.length))
  const natural = Array.from({length: cols}, (_, i) => Math.max(1, ...rows.map((r) => Math.max(0, ...String(r[i] ?? '').split('\n').map(visibleWidth)))) + 2)
  const overhead = cols + 1
  if (natural.reduce((a, b) => a + b, 0) + overhead <= width) return null
  const floor = natural.map((w, i) => Math.min(w, Math.max(6, 2 + Math.max(0, ...rows.map((r) => Math.max(0, ...String(r[i] ?? '').split(/\s+/).map(visibleWidth)))))))
  const widths = [...natural]
  let excess = widths.reduce((a, b) => a + b, 0) + overhead - width
  while (excess > 0) {
    let widest = -1
    for (let i = 0; i < cols; i++) if (widths[i] > floor[i] && (widest < 0 || widths[i] > widths[widest])) widest = i
    if (widest < 0) break
    widths[widest]--
    excess--
  }
  // Still too wide: longest words are cut (cli-table3 truncates what does not wrap).
  while (excess > 0) {
    let widest = 0
    for (let i = 1; i < cols; i++) if (widths[i] > widths[widest]) widest = i
    if (widths[widest] <= 4) break
    widths[widest]--
    excess--
  }
  return widths
}

/**
 * Plain columns (no box), padded by visible width with `gap` spaces between; the last column is
 * not padded.
 */
export function columns(rows: string[][], gap = 2): string[] {
  const cols = Math.max(0, ...rows.map((r) => r.length))
  const widths = Array.from({length: cols}, (_, i) => Math.max(0, ...rows.map((r) => visibleWidth(r[i] ?? ''))))
  return rows.map((r) =>
    r
      .map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i] - visibleWidth(cell) + gap)))
      .join('')
      .trimEnd(),
  )
}
