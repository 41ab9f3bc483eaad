/**
 * `node --import ./test/support/kill-archive.mjs bin/run.js archive run ...` kills the process with
 * SIGKILL (kill -9: no handler, no finally runs) at a chosen step of the Nth archive file, named by
 * KILL_ARCHIVE="<step>:<n>": before-rename (its temp file written and fsynced), after-rename (in
 * place, not yet listed), before-deleted (listed, its events removed from the store, the "deleted"
 * line not yet written); or sigint-after-rename sends it SIGINT (Ctrl+C) there instead. A crash at an
 * exact point, not at a time.
 */
import fs from 'node:fs'
import {syncBuiltinESMExports} from 'node:module'

const [step, nth] = (process.env.KILL_ARCHIVE ?? '').split(':')
const n = Number(nth)
if (step && n > 0) {
  const kill = () => process.kill(process.pid, 'SIGKILL')
  let renames = 0
  let deleted = 0
  const renameSync = fs.renameSync
  fs.renameSync = function (from, to) {
    const archive = String(to).endsWith('.ndjson.gz')
    if (archive && step === 'before-rename' && ++renames === n) kill()
    const result = renameSync.call(this, from, to)
    if (archive && step === 'after-rename' && ++renames === n) kill()
    if (archive && step === 'sigint-after-rename' && ++renames === n) process.kill(process.pid, 'SIGINT')
    return result
  }
  const writeSync = fs.writeSync
  fs.writeSync = function (fd, data, ...rest) {
    if (step === 'before-deleted' && typeof data === 'string' && data.startsWith('{"kind":"deleted"') && ++deleted === n) kill()
    return writeSync.call(this, fd, data, ...rest)
  }
  syncBuiltinESMExports()
}
