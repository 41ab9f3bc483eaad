/**
 * The dashboard's components rendered by Ink (ink-testing-library) from fixed view-models, at 80x24
 * and 120x40: what each frame shows, that no line is wider than the terminal nor the frame taller,
 * that colour follows the model, and that keys reach the handler given to KeyInput.
 */
import {createElement as h} from 'react'
import {render} from 'ink-testing-library'
import {afterEach, describe, expect, it} from 'vitest'
import {stripAnsi, visibleWidth} from '../../src/cli/style.js'
import type {Key} from '../../src/ui/controller.js'
import {Dashboard} from '../../src/ui/Dashboard.js'
import {KeyInput} from '../../src/ui/KeyInput.js'
import {buildViewModel, initialUiState, type UiState} from '../../src/ui/view-model.js'
import {busyData, entry} from './fixtures.js'
import {cleanup} from 'ink-testing-library'
// Ink paints through chalk, which finds no terminal under a test runner: its level is set here.
import chalk from 'chalk'

afterEach(() => cleanup())

const SIZES = [
  {columns: 80, rows: 24},
  {columns: 120, rows: 40},
]

function frame(ui: UiState, size: {columns: number; rows: number}, options: {color?: boolean; data?: ReturnType<typeof busyData>} = {}) {
  const model = buildViewModel(options.data ?? busyData(), ui, size, {color: options.color})
  const {lastFrame} = render(h(Dashboard, {model}))
  const out = lastFrame() ?? ''
  const lines = out.split('\n')
  for (const line of lines) expect(visibleWidth(line), line).toBeLessThanOrEqual(size.columns)
  expect(lines.length).toBeLessThanOrEqual(size.rows)
  return out
}

describe.each(SIZES)('the dashboard at $columns x $rows', (size) => {
  it('overview: header, throughput, latency, groups, DLQ, help line at the bottom', () => {
    const out = frame(initialUiState(), size)
    expect(out).toContain('tektree dashboard')
    expect(out).toContain('redis://admin:****@127.0.0.1:6390')
    expect(out).toMatch(/IN\s+1,235\/s\s+[▁▂▃▄▅▆▇█]+/)
    expect(out).toMatch(/delivery\s+p50 40ms/)
    expect(out).toContain('> analytics')
    expect(out).toContain('DLQ 120 entries')
    const lines = out.split('\n')
    expect(lines[lines.length - 1]).toContain('q quit')
    expect(lines.length).toBe(size.rows)
    if (size.rows >= 40) expect(out).toContain('user.registered')
  })

  it('a group, the DLQ causes, an entry with the retry question, the tail, help', () => {
    expect(frame({...initialUiState(), view: 'group', openGroup: 'gamification'}, size)).toContain('CONSUMERS (1)')
    expect(frame({...initialUiState(), view: 'dlq'}, size)).toMatch(/> +50 +payment/)
    const asked = frame({...initialUiState(), view: 'entry', openCause: 'x', confirm: true}, size, {data: busyData({entry: entry()})})
    expect(asked).toContain('Retry payment:id-0-a?')
    expect(asked).toContain('"plan": "pro"')
    expect(frame({...initialUiState(), view: 'tail'}, size)).toContain('social.content.liked')
    expect(frame({...initialUiState(), help: true}, size)).toContain('KEYS')
  })
})

describe('colour', () => {
  it('none in the frame when the model says no colour (NO_COLOR, not a terminal)', () => {
    const out = frame(initialUiState(), {columns: 80, rows: 24}, {color: false})
    expect(out).toBe(stripAnsi(out))
  })

  it('the p95 over its target in red, the selected row inverse, when colour is allowed', () => {
    const level = chalk.level
    chalk.level = 1
    try {
      const out = frame(initialUiState(), {columns: 80, rows: 24}, {color: true})
      expect(out).toContain('\u001b[31m150ms')
      expect(out).toContain('\u001b[7m')
      // The same terminal, the model without colour: nothing painted.
      const plain = frame(initialUiState(), {columns: 80, rows: 24}, {color: false})
      expect(plain).toBe(stripAnsi(plain))
    } finally {
      chalk.level = level
    }
  })
})

describe('KeyInput', () => {
  it('hands each key to onKey as the controller names it', async () => {
    const keys: Key[] = []
    const {stdin} = render(h(KeyInput, {onKey: (k: Key) => keys.push(k)}))
    await new Promise((r) => setTimeout(r, 20))
    stdin.write('j')
    stdin.write('\u001b[A')
    stdin.write('\r')
    stdin.write('\t')
    stdin.write('\u0003')
    await new Promise((r) => setTimeout(r, 50))
    expect(keys).toEqual([{name: 'char', char: 'j'}, {name: 'up'}, {name: 'enter'}, {name: 'tab'}, {name: 'ctrl-c'}])
  })
})
