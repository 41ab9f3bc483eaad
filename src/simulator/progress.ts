/**
 * Progress while a simulation runs: one line rewritten in place on a TTY, plain periodic lines
 * otherwise (logs, CI). Formatting only; the command decides where it goes.
 */
import {terminalWidth, type Style} from '../cli/style.js'
import type {SimulationProgress} from './run.js'

const num = (v: number) => Math.round(v).toLocaleString('en-US')

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000))
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`
}

export function formatProgress(p: SimulationProgress): string {
  const parts = [
    p.phase === 'generating' ? `${duration(p.elapsedMs)}` : `${duration(p.elapsedMs)} ${p.phase}`,
    `rate ${num(p.achievedRate)}/${num(p.targetRate)}/s${p.heldBack ? ' HELD BACK' : p.behind ? ' BEHIND' : ''}`,
    `sent ${num(p.sent)}`,
    `processed ${num(p.processed)}`,
    `lag ${num(p.backlog)}${p.lagGrowing ? ' GROWING' : ''}`,
    `p95 ${p.deliveryP95 === null ? '-' : `${p.deliveryP95.toFixed(1)}ms`}`,
    `DLQ ${num(p.dlq)}`,
  ]
  if (p.etaMs !== null) parts.push(`ETA ${duration(p.etaMs)}`)
  return parts.join(' | ')
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
  let last = -Infinity
  let live = false
  return {
    update(p) {
      const line = formatProgress(p)
      if (tty) {
        const width = options.style?.width ?? terminalWidth(stream)
        stream.write(`\r${line.slice(0, width - 1)}\u001b[K`)
        live = true
        return
      }
      const t = now()
      if (t - last < every) return
      last = t
      stream.write(line + '\n')
    },
    done() {
      if (tty && live) stream.write('\n')
      live = false
    },
  }
}
