/**
 * Progress while a simulation runs: one line rewritten in place on a TTY, plain periodic lines
 * otherwise (logs, CI). Formatting only; the command decides where it goes. Each phase shows what
 * matters in it, labelled, and the line fits the width by dropping its least useful parts first:
 * DLQ and ETA always stay.
 */
import {createStyle, stripAnsi, terminalWidth, truncate, visibleWidth, type Style} from '../cli/style.js'
import type {SimulationProgress} from './run.js'

const num = (v: number) => Math.round(v).toLocaleString('en-US')

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

const PLAIN = createStyle({isTTY: false}, {color: false})

interface Part {
  text: string
  /** 0 always stays; higher numbers go first when the line is too wide. */
  priority: number
  /** What the part becomes, instead of going, at its turn. */
  short?: string
}

function parts(p: SimulationProgress, style: Style): Part[] {
  const dlq: Part = {text: p.dlq > 0 ? style.bad(`DLQ ${num(p.dlq)}`) : `DLQ ${num(p.dlq)}`, priority: 0}
  const lag: Part = {text: `lag ${p.backlog === null ? '?' : num(p.backlog)}${p.lagGrowing ? ` ${style.warn('GROWING')}` : ''}`, priority: 1}
  if (p.phase === 'verifying') return [{text: `${duration(p.elapsedMs)} verifying the projections against the event log`, priority: 0}, dlq]
  if (p.phase === 'draining') {
    return [{text: `${duration(p.elapsedMs)} draining`, priority: 0}, lag, dlq, {text: `ETA ${p.etaMs === null ? '?' : `~${duration(p.etaMs)}`}`, priority: 0}]
  }
  const flag = p.heldBack ? ` ${style.warn('HELD BACK')}` : p.behind ? ` ${style.warn('BEHIND')}` : ''
  return [
    {text: duration(p.elapsedMs), priority: 0},
    {text: `${num(p.achievedRate)}/s of ${num(p.targetRate)}/s planned${flag}`, priority: 2, short: `${num(p.achievedRate)}/s${flag}`},
    {text: `${num(p.sent)} events sent`, priority: 3},
    lag,
    {text: `delivery p95 ${p.deliveryP95 === null ? '-' : `${p.deliveryP95.toFixed(1)}ms`}`, priority: 4},
    dlq,
    {text: `ETA ${p.etaMs === null ? '?' : duration(p.etaMs)}`, priority: 0},
  ]
}

/**
 * The live line for `p`, at most `width` columns: the least useful parts are shortened or dropped
 * first (delivery p95, the event count, the planned rate, the lag), then the text is cut.
 */
export function formatProgress(p: SimulationProgress, options: {width?: number; style?: Style} = {}): string {
  const width = options.width ?? Number.POSITIVE_INFINITY
  const kept = parts(p, options.style ?? PLAIN)
  const join = () => kept.map((part) => part.text).join(' | ')
  while (visibleWidth(join()) > width) {
    const lowest = Math.max(...kept.map((part) => part.priority))
    if (lowest === 0) break
    const at = kept.map((part) => part.priority).lastIndexOf(lowest)
    const part = kept[at]
    if (part.short === undefined) kept.splice(at, 1)
    else kept[at] = {text: part.short, priority: 0}
  }
  const line = join()
  // Too narrow even for the essentials: cut the plain text.
  return visibleWidth(line) > width ? truncate(stripAnsi(line), width) : line
}

export interface ProgressWriter {
  update(p: SimulationProgress): void
  /** Ends the live line so the summary starts on a fresh one. */
  done(): void
}

export function createProgressWriter(stream: NodeJS.WriteStream | {write(s: string): unknown; isTTY?: boolean; columns?: number}, options: {everyMs?: number; now?: () => number; style?: Style} = {}): ProgressWriter {
  const tty = Boolean(stream.isTTY)
  const every = options.everyMs ?? 2000
  const now = options.now ?? Date.now
  const style = options.style ?? createStyle(stream)
  let last = -Infinity
  let live = false
  return {
    update(p) {
      if (tty) {
        // One column short of the width: a line that fills the last column wraps on some terminals.
        const width = (stream as {columns?: number}).columns ? terminalWidth(stream) : style.width
        stream.write(`\r${formatProgress(p, {width: width - 1, style})}\u001b[K`)
        live = true
        return
      }
      const t = now()
      if (t - last < every) return
      last = t
      stream.write(formatProgress(p, {width: style.width, style}) + '\n')
    },
    done() {
      if (tty && live) stream.write('\n')
      live = false
    },
  }
}
