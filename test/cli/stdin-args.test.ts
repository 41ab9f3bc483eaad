/**
 * A positional argument is never read from a pipe (oclif reads stdin into an argument unless told
 * not to): in a `while read` loop, `tektree lag` took the loop's remaining lines as a group name
 * ("No consumer group \"second\nthird\"") and ended the loop. Only publish and catalog validate read
 * stdin, and they read it as their input.
 */
import {describe, expect, it} from 'vitest'
import {requireBuild, runCli} from './run-cli.js'

describe('piped input', () => {
  it('is not taken as a missing argument', async () => {
    requireBuild()
    // Both would succeed with the piped text as their argument.
    for (const [args, piped] of [
      [['catalog', 'show'], 'user.registered\n'],
      [['demo', '--in-process'], 'registration\n'],
    ] as const) {
      const result = await runCli([...args], {stdin: piped})
      expect({args, code: result.code}).toEqual({args, code: 2})
      expect(result.stderr).toMatch(/Missing 1 required arg/)
    }
  })
})
