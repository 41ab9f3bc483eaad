/**
 * `node --import ./test/support/record-imports.mjs bin/run.js ...` appends every file the process
 * loads (ESM imports through a resolve hook, CommonJS requires from require.cache at exit) to the file
 * named by RECORD_IMPORTS_FILE, one per line. test/cli/startup.test.ts reads it to check what a
 * command loads at start-up.
 */
import {appendFileSync} from 'node:fs'
import {createRequire, register} from 'node:module'

const out = process.env.RECORD_IMPORTS_FILE
if (out) {
  register('./record-imports-hooks.mjs', import.meta.url)
  const require = createRequire(import.meta.url)
  process.on('exit', () => appendFileSync(out, Object.keys(require.cache).map((file) => `${file}\n`).join('')))
}
