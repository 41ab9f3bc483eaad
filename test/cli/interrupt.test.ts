/**
 * A command whose embedded servers are being stopped after Ctrl+C may fail because of it (its
 * redis-server went away while it connected): it exits as the signal would have it, 130, quietly,
 * once the servers are stopped, not with the error's own code (CI saw exit 2, REDIS_UNREACHABLE).
 */
import {Config} from '@oclif/core'
import {afterEach, describe, expect, it, vi} from 'vitest'
import {BaseCommand} from '../../src/cli/base.js'
import {noteInterruption} from '../../src/core/interrupt.js'
import {UserError} from '../../src/errors.js'
import {ROOT} from './run-cli.js'

class Failing extends BaseCommand<typeof Failing> {
  async run(): Promise<void> {}
  fail(error: Error): Promise<unknown> {
    return this.catch(error)
  }
}

afterEach(() => {
  vi.restoreAllMocks()
})

describe('an error raised while an interruption is being handled', () => {
  it('before: a user error exits with its own code and message', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    const command = new Failing([], await Config.load(ROOT))
    const error = new UserError('Cannot reach Redis at redis://127.0.0.1:1', {code: 'REDIS_UNREACHABLE', exitCode: 2})
    await expect(command.fail(error)).rejects.toMatchObject({oclif: {exit: 2}})
    expect(stderr.mock.calls.join('')).toContain('Cannot reach Redis')
  })

  it('after Ctrl+C: waits for the servers to stop, then exits 130 without the error', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true)
    let stop!: () => void
    const stopped = new Promise<void>((resolve) => (stop = resolve))
    noteInterruption({signal: 'SIGINT', exitCode: 130, stopped})
    const command = new Failing([], await Config.load(ROOT))
    const error = new UserError('Cannot reach Redis at redis://127.0.0.1:1', {code: 'REDIS_UNREACHABLE', exitCode: 2})
    let settled = false
    const outcome = command.fail(error).then(
      () => 'resolved',
      (thrown: {oclif?: {exit?: number}}) => thrown.oclif?.exit,
    ).finally(() => (settled = true))
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(settled).toBe(false) // the servers are still being stopped
    stop()
    expect(await outcome).toBe(130)
    expect(stderr.mock.calls.join('')).toBe('')
  })
})
