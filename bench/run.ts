/**
 * Every benchmark in one run, so that each figure sits beside its baseline measured minutes apart on
 * the same machine (BENCHMARKS.md quotes this output):
 *   0. start-up of --help, version and catalog list (vs node -e 0),
 *   1. catalog validate (vs JSON.parse alone),
 *   2. the bare runtime per adapter (vs redis-benchmark XADD -P 64), and the Kafka bus (vs Kafka's
 *      ProducerPerformance on the same broker),
 *   3. the simulator with every TekTree service, in-process and on a real redis-server, with the
 *      in-process store and with the SQLite store file (the embedded default, 1 and 2 workers).
 * Starts and stops its own redis-server.
 *
 *   npm run bench [-- --quick]      (builds first; measures dist/, what the CLI runs)
 */
import {spawnSync} from 'node:child_process'
import {mkdtempSync, rmSync} from 'node:fs'
import {cpus, tmpdir, totalmem} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {parseArgs} from 'node:util'
import {startRedisServer} from '../src/embedded/redis-server.js'

const {values} = parseArgs({options: {quick: {type: 'boolean', default: false}}})
const quick = values.quick
const root = fileURLToPath(new URL('../', import.meta.url))

/** tsx for the benchmark files, the compiled build for what they measure (bench/compiled.mjs). */
const COMPILED = ['--import', 'tsx', '--import', './bench/compiled.mjs']

function bench(file: string, args: string[]): void {
  process.stderr.write(`\n=== ${file} ${args.join(' ')}\n`)
  const result = spawnSync(process.execPath, [...COMPILED, path.join('bench', file), ...args], {cwd: root, stdio: 'inherit'})
  if (result.status !== 0) throw new Error(`${file} exited ${result.status}`)
}

process.stderr.write(`${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, ${new Date().toISOString()}\n`)
bench('startup.ts', ['--runs', quick ? '10' : '20'])
bench('catalog-validate.ts', ['--events', quick ? '50000' : '200000'])
bench('runtime.ts', ['--messages', quick ? '50000' : '200000', '--store-messages', quick ? '5000' : '20000'])
// Its own Kafka broker (needs Java and `bash scripts/provision-kafka.sh`).
bench('kafka.ts', ['--messages', quick ? '50000' : '200000'])
const dir = mkdtempSync(path.join(tmpdir(), 'tektree-bench-'))
const redis = await startRedisServer({dir})
try {
  bench('simulate.ts', ['--services', 'tektree', '--targets', 'in-process', '--rates', quick ? '1000,5000' : '1000,5000,20000', '--seconds', quick ? '5' : '10'])
  bench('simulate.ts', ['--services', 'tektree', '--targets', 'redis', '--redis-url', redis.url, '--rates', quick ? '500,1000' : '500,1000,2000,5000', '--seconds', quick ? '5' : '10'])
  // The embedded default: Redis bus + SQLite store file, the services on the main thread and in 2 workers.
  bench('simulate.ts', ['--services', 'tektree', '--targets', 'sqlite', '--redis-url', redis.url, '--workers', '1,2', '--rates', quick ? '1000' : '1000,2000,5000', '--seconds', quick ? '5' : '15'])
  bench('simulate.ts', ['--services', 'sink', '--targets', 'sqlite', '--redis-url', redis.url, '--rates', quick ? '5000' : '5000,20000', '--seconds', quick ? '5' : '10'])
  bench('simulate.ts', ['--services', 'sink', '--targets', 'in-process,redis', '--redis-url', redis.url, '--rates', quick ? '5000' : '5000,20000', '--seconds', quick ? '5' : '10'])
} finally {
  await redis.stop()
  rmSync(dir, {recursive: true, force: true})
}
