/** printable: untrusted text (bus bytes, messages quoting them) made safe for an operator's terminal. */
import {describe, expect, it} from 'vitest'
import {printable} from '../../src/core/redact.js'

const OSC52 = '\u001b]52;c;cm0gLXJmIH4K\u0007'
const CLEAR = '\u001b[2J'

describe('printable', () => {
  it('shows escape sequences, NUL, DEL and C1 controls as JSON escapes', () => {
    expect(printable(`a${OSC52}b${CLEAR}\u0000\u007f\u009b31m\u009d0;t\u009c`)).toBe(
      'a\\u001b]52;c;cm0gLXJmIH4K\\u0007b\\u001b[2J\\u0000\\u007f\\u009b31m\\u009d0;t\\u009c',
    )
  })

  it('keeps a single line one line: \\n, \\r and \\t are shown, so a message cannot forge the next line', () => {
    expect(printable('x\nservices: all fine\r\tend')).toBe('x\\nservices: all fine\\r\\tend')
  })

  it('with layout, keeps \\n and \\t and still shows \\r and the others', () => {
    expect(printable(`line 1\n\tline 2\r\n${CLEAR}`, {layout: true})).toBe(`line 1\n\tline 2\\r\n\\u001b[2J`)
  })

  it('leaves printable text alone, Unicode included, and backslashes as written', () => {
    const text = 'user.registered 0b9f3c1e ÿ é 漢字 🎉 C:\\path \\u001b (already text)'
    expect(printable(text)).toBe(text)
  })

  it('JSON text shown with layout stays JSON with the same value (C1 is raw in JSON.stringify output)', () => {
    const value = {raw: `\u0000\u00ff{${CLEAR}\u009b2J`, nested: {s: OSC52}}
    const json = JSON.stringify(value, null, 2)
    expect(json).toContain('\u009b') // what JSON.stringify leaves raw
    const shown = printable(json, {layout: true})
    expect(shown).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/)
    expect(JSON.parse(shown)).toEqual(value)
  })
})
