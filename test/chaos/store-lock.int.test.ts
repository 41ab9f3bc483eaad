/**
 * The store's file locked: another process (a sqlite3 shell left inside BEGIN, a stuck tool) holds
 * the write lock on store.db for longer than the busy timeout (5 s, then as long again in retries)
 * while the services (a child process, the product's retry schedule) consume and the simulator
 * publishes. What the SQLite store documents: a writer waits for the lock, and past its wait fails
 * with STORE_BUSY; the consumer runner then leaves the deliveries unacked and the bus brings them
 * back. So once the lock is released the services go on: nothing lost, nothing applied twice, no
 * crash loop (the process keeps running), and nothing dead-lettered for the lock.
 *
 * 20 s is past every wait: SQLite's busy timeout (5 s) and the store's retries for as long again
 * (a write that began just before the lock gives up after ~15 s with STORE_BUSY).
 *
 * CI: 1 lock of 20 s over 3,000 events. `npm run chaos`: TEKTREE_CHAOS_ROUNDS locks,
 * TEKTREE_CHAOS_EVENTS, TEKTREE_CHAOS_LOCK_MS.
 */
import {spawn} from 'node:child_process'
import {afterAll, beforeAll, describe, expect, inject, it} from 'vitest'
import {type ChaosSystem, describeCheck, envCount, eventCount, openChaosSystem, recordResult, rounds, sleep} from '../support/chaos/harness.js'

const available = inject('redisUrl') !== null
const LOCKS = rounds(1)
const EVENTS = eventCount(3_000)
const HOLD_MS = envCount('TEKTREE_CHAOS_LOCK_MS', 20_000)

/** A process that takes the write lock (BEGIN EXCLUSIVE), holds it `ms`, commits and exits. */
async function holdLock(file: string, ms: number): Promise<void> {
  const script = `
    const Database = require('better-sqlite3')
    const db = new Database(process.argv[1], {timeout: 30000})
    db.exec('BEGIN EXCLUSIVE')
    db.prepare("CREATE TABLE IF NOT EXISTS chaos_lock (n INTEGER)").run()
    process.stdout.write('locked\\n')
    setTimeout(() => { db.exec('COMMIT'); db.close(); process.exit(0) }, Number(process.argv[2]))
  `
  const child = spawn(process.execPath, ['-e', script, file, String(ms)], {stdio: ['ignore', 'pipe', 'inherit']})
  const exited = new Promise<number | null>((done) => child.once('exit', done))
  await new Promise<void>((locked, failed) => {
    child.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('locked') && locked())
    void exited.then((code) => failed(new Error(`the lock holder exited (${code}) before it held the lock`)))
  })
  const code = await exited
  if (code !== 0) throw new Error(`the lock holder exited with ${code}`)
}

describe.skipIf(!available)(`the store's file locked by another process (${available ? 'redis-server + SQLite' : `skipped: ${inject('redisUnavailable')}`})`, () => {
  let system: ChaosSystem
  beforeAll(async () => {
    system = await openChaosSystem('store-lock')
  })
  afterAll(async () => {
    await system?.close()
  })

  it(`${LOCKS} locks of ${HOLD_MS / 1000} s: the services wait, recover, lose nothing`, {timeout: 150_000 + LOCKS * 30_000}, async () => {
    const started = Date.now()
    // given the services in a child process, and traffic
    const services = system.startServicesChild({env: {CHILD_RETRY_DELAYS_MS: 'default'}})
    await services.ready
    const rate = Math.max(50, Math.min(300, Math.round(EVENTS / (LOCKS * (HOLD_MS / 1000 + 4)))))
    const load = system.startLoad({events: EVENTS, rate})
    // when another process holds the store's write lock past every busy timeout, now and then
    for (let lock = 0; lock < LOCKS; lock++) {
      await sleep(2_000 + system.random.int(2_000))
      await system.poison(1)
      await holdLock(system.storePath, HOLD_MS)
    }
    const report = await load
    const drained = await system.drain(120_000)
    // then the services process never died, and everything that was published was applied once
    const stillRunning = services.child.exitCode === null && services.child.signalCode === null
    await services.stop()
    const check = await system.check({drained})
    const storeErrors = services.lines.filter((line) => line.store_error).length
    recordResult({
      file: 'test/chaos/store-lock.int.test.ts',
      scenario: "the store's file locked by another process",
      seed: system.seed,
      injected: {[`write lock held ${HOLD_MS / 1000} s by another process`]: LOCKS, 'poison pills': LOCKS},
      events: report.events.simulated,
      checks: check,
      durationMs: Date.now() - started,
      notes: [`${storeErrors} store errors reported by the services (commits refused while locked)`, `${EVENTS - report.events.simulated} events the generator could not append while locked`],
    })
    expect(stillRunning, 'the services process survived the locks').toBe(true)
    expect(check.ok, `${describeCheck(check)}\n${services.output().slice(-3_000)}`).toBe(true)
  })
})
