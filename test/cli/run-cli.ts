/**
 * Runs the built CLI (`node bin/run.js ...` on dist/, as a user runs it) in a child process, for the
 * tests of the command-line conventions. `npm test` builds first.
 */
import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const BIN = path.join(ROOT, 'bin', 'run.js')

export interface CliResult {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export function requireBuild(): void {
  if (!existsSync(path.join(ROOT, 'dist', 'commands', 'catalog', 'list.js'))) throw new Error('dist/ is not built: run `npm run build` first')
}

export interface RunOptions {
  cwd?: string
  env?: Record<string, string | undefined>
  stdin?: string
  /** Extra node flags before bin/run.js (e.g. --import a hook). */
  nodeArgs?: string[]
}

export function runCli(args: string[], options: RunOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
      cwd: options.cwd ?? ROOT,
      env: {...process.env, NO_COLOR: '1', TEKTREE_CATALOG: '', ...options.env},
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code, signal) => resolve({code, signal, stdout, stderr}))
    child.stdin.end(options.stdin ?? '')
  })
}
