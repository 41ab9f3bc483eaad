/**
 * Help speaks the user's language (issue 12, item 20): no "seed 000" / "seed 002" (the names of
 * tektree's source documents, which a user never sees) and no command that does not exist (a
 * "redrive" was mentioned before any redrive command). Reads every command's help from the manifest.
 */
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {ROOT, requireBuild} from './run-cli.js'

describe('help text', () => {
  it('names no source document and no command that does not exist', () => {
    requireBuild()
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    const offending: string[] = []
    // "redrive" may be spoken of once there is a command by that name.
    const words = 'dlq:redrive' in manifest.commands ? [/seed 00\d/i] : [/seed 00\d/i, /redrive/i]
    for (const [id, command] of Object.entries(manifest.commands)) {
      const text = JSON.stringify(command)
      for (const word of words) if (word.test(text)) offending.push(`${id}: ${word}`)
    }
    expect(offending).toEqual([])
  })
})
