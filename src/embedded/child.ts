/** What each embedded server's launcher needs around its child process: paths, ports, exits. */
import {execFile, type ChildProcess} from 'node:child_process'
import {existsSync} from 'node:fs'
import {createServer} from 'node:net'
import {delimiter, dirname, join, resolve} from 'node:path'
import {fileURLToPath} from 'node:url'

/** The repository / package root (this file lives in src/embedded or dist/embedded). */
export function packageRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..')
}

/** The first `name` found in a PATH directory, or null. */
export function onPath(name: string): string | null {
  for (const directory of (process.env.PATH ?? '').split(delimiter)) {
    if (directory && existsSync(join(directory, name))) return join(directory, name)
  }
  return null
}

/** JAVA_HOME's java, else java on PATH (the Kafka broker and mongo-java-server run on it). */
export function findJava(): string | null {
  const home = process.env.JAVA_HOME
  if (home && existsSync(join(home, 'bin', 'java'))) return join(home, 'bin', 'java')
  return onPath('java')
}

/** A free TCP port on 127.0.0.1 (bind :0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address ? address.port : 0
      server.close(() => (port ? resolvePort(port) : reject(new Error('could not read a free port'))))
    })
  })
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

export function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null
}

/** True once `child` has exited, false when it is still running after `timeoutMs`. */
export function waitExit(child: ChildProcess, timeoutMs: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true)
  return new Promise((resolveExit) => {
    const timer = setTimeout(() => {
      child.off('exit', onExit)
      resolveExit(false)
    }, timeoutMs)
    const onExit = () => {
      clearTimeout(timer)
      resolveExit(true)
    }
    child.once('exit', onExit)
  })
}

/** Runs a program to its end: its stdout, or an error with the end of what it said. `onSpawn` is told its pid. */
export function runProgram(file: string, args: string[], timeoutMs: number, onSpawn?: (pid: number) => void): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = execFile(file, args, {timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024}, (error, stdout, stderr) => {
      if (error) reject(new Error(`${file} ${args.slice(-4).join(' ')} failed: ${String(stderr || stdout || error.message).trim().slice(-1_500)}`))
      else resolveRun(String(stdout))
    })
    if (child.pid) onSpawn?.(child.pid)
  })
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
