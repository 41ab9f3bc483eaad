/** The one colour and width rule every command prints through (src/cli/style.ts). */
import {describe, expect, it} from 'vitest'
import {colorEnabled, columns, createStyle, fitColumns, fitLines, stripAnsi, terminalWidth, visibleWidth, wrap} from '../../src/cli/style.js'

const ESC = '\u001b'

describe('colour', () => {
  it('is on for a TTY only, and never with NO_COLOR or TERM=dumb', () => {
    expect(colorEnabled({isTTY: true}, {})).toBe(true)
    expect(colorEnabled({isTTY: false}, {})).toBe(false)
    expect(colorEnabled({}, {})).toBe(false)
    expect(colorEnabled({isTTY: true}, {NO_COLOR: '1'})).toBe(false)
    expect(colorEnabled({isTTY: true}, {TERM: 'dumb'})).toBe(false)
    // An empty NO_COLOR does not count (no-color.org).
    expect(colorEnabled({isTTY: true}, {NO_COLOR: ''})).toBe(true)
  })

  it('FORCE_COLOR turns it on off a TTY (CI logs) and off with 0/false; NO_COLOR still wins', () => {
    expect(colorEnabled({isTTY: false}, {FORCE_COLOR: '1'})).toBe(true)
    expect(colorEnabled({isTTY: true}, {FORCE_COLOR: '0'})).toBe(false)
    expect(colorEnabled({isTTY: true}, {FORCE_COLOR: 'false'})).toBe(false)
    expect(colorEnabled({isTTY: false}, {FORCE_COLOR: '1', NO_COLOR: '1'})).toBe(false)
  })

  it('the palette and tables carry escapes only when colour is on', () => {
    const on = createStyle({isTTY: true}, {env: {}})
    const off = createStyle({isTTY: false}, {env: {}})
    for (const name of ['ok', 'warn', 'bad', 'dim', 'bold'] as const) {
      expect(on[name]('x')).toContain(ESC)
      expect(stripAnsi(on[name]('x'))).toBe('x')
      expect(off[name]('x')).toBe('x')
    }
    const table = (s: typeof on) => {
      const t = s.table(['a', 'b'])
      t.push(['1', '2'])
      return t.toString()
    }
    expect(table(on)).toContain(ESC)
    expect(table(off)).not.toContain(ESC)
    expect(off.fitTable(['a'], [['1']])).not.toContain(ESC)
  })
})

describe('width', () => {
  it('is the terminal\'s columns, or 80 off a terminal', () => {
    expect(terminalWidth({isTTY: true, columns: 132})).toBe(132)
    expect(terminalWidth({isTTY: false, columns: 132})).toBe(80)
    expect(terminalWidth({isTTY: true})).toBe(80)
  })

  it('wraps words with a hanging indent, splitting a word longer than the line', () => {
    const lines = wrap('the quick brown fox jumps over the lazy dog', 16, '    ', '  ')
    expect(lines).toEqual(['  the quick', '    brown fox', '    jumps over', '    the lazy dog'])
    expect(wrap(`path ${'x'.repeat(20)}`, 10, '  ')).toEqual(['path', '  xxxxxxxx', '  xxxxxxxx', '  xxxx'])
  })

  it('fits a line to the width, keeping its indentation', () => {
    expect(fitLines('  store /a/long/path (SQLite 3, 1.2 MiB) and some more words here', 30)).toEqual(['  store /a/long/path (SQLite', '    3, 1.2 MiB) and some more', '    words here'])
    expect(fitLines('short\n  also short', 30)).toEqual(['short', '  also short'])
  })

  it('fits a wide table to the width by wrapping its widest columns', () => {
    const style = createStyle({isTTY: false}, {color: true})
    const rows = [['user.registered', 'gamification, payment, email, notification, search, analytics, realtime', 'a fairly long description of what happens to it']]
    expect(fitColumns([['h1', 'h2', 'h3'], ...rows], 200)).toBeNull()
    const text = style.fitTable(['type', 'consumers', 'description'], rows)
    for (const line of text.split('\n')) expect(visibleWidth(line)).toBeLessThanOrEqual(80)
    expect(stripAnsi(text)).toContain('user.registered')
  })

  it('pads plain columns by visible width, escapes included', () => {
    const style = createStyle({isTTY: true}, {env: {}})
    expect(columns([[style.bold('ab'), 'x'], ['abcd', 'y']]).map(stripAnsi)).toEqual(['ab    x', 'abcd  y'])
  })
})
