import {mkdtempSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {describe, expect, it} from 'vitest'
import {UserError} from '../../src/errors.js'
import {
  applyOverrides,
  listScenarios,
  loadScenario,
  parseDuration,
  parseScenario,
  plannedDurationMs,
  resolveScenarioPath,
} from '../../src/simulator/scenario.js'

const minimal = {name: 'x', population: {users: 10}, rate: {stages: [{duration: '1s', target: 10}]}}

function errorOf(fn: () => unknown): UserError {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(UserError)
    return error as UserError
  }
  throw new Error('expected a UserError')
}

describe('scenario files', () => {
  it('ships the named scenarios and every one is valid', () => {
    const names = listScenarios()
    for (const name of ['smoke', 'steady', 'steady-1k', 'burst-5k', 'soak', 'chaos', 'ci', 'registration', 'engagement', 'achievement']) {
      expect(names).toContain(name)
    }
    for (const name of names) expect(loadScenario(name).name).toBe(name)
  })

  it('reads durations, shapes and faults', () => {
    const chaos = loadScenario('chaos')
    expect(chaos.faults.consumerCrashEveryMs).toBe(5000)
    expect(chaos.faults.handlerFailure.gamification).toBe(0.05)
    expect(chaos.clock.speed).toBe(3600)
    const burst = loadScenario('burst-5k')
    expect(burst.rate.stages.map((s) => s.target)).toEqual([1000, 5000, 1000, 5000, 1000])
    expect(burst.rate.stages.every((s) => s.shape === 'step')).toBe(true)
    expect(plannedDurationMs(burst)).toBe(40_000)
  })

  it('names the file, the field path and the problem', () => {
    const bad = {...minimal, rate: {stages: [{duration: '1s', target: 1}, {duration: '2s', target: -5}]}}
    expect(errorOf(() => parseScenario(bad, 'fixtures/x.yaml')).message).toBe('fixtures/x.yaml: rate.stages[1].target must be a number >= 0')
    expect(errorOf(() => parseScenario({...minimal, rate: {stages: [{duration: 'soon', target: 1}]}}, 'a.yaml')).message).toMatch(
      /^a\.yaml: rate\.stages\[0\]\.duration must be a duration/,
    )
    expect(errorOf(() => parseScenario({name: 'x', rate: minimal.rate}, 'b.yaml')).message).toBe('b.yaml: population is required')
    expect(errorOf(() => parseScenario({...minimal, journeys: {jump: 1}}, 'c.yaml')).message).toMatch(/^c\.yaml: journeys\.jump is not a known field \(known here: register, authenticate, /)
    // A misspelt field is named, with the field it was probably meant to be, not "population is required".
    const {population, ...rest} = minimal
    expect(errorOf(() => parseScenario({...rest, populaton: population}, 'g.yaml')).message).toBe('g.yaml: populaton is not a known field. Did you mean population?')
    expect(errorOf(() => parseScenario({...minimal, rate: {...minimal.rate, stages: [{duration: '1s', taget: 5}]}}, 'h.yaml')).message).toBe(
      'h.yaml: rate.stages[0].taget is not a known field. Did you mean rate.stages[0].target?',
    )
    expect(errorOf(() => parseScenario({...minimal, faults: {poison_pct: 200}}, 'd.yaml')).message).toBe('d.yaml: faults.poison_pct must be a number <= 100')
    expect(errorOf(() => parseScenario({...minimal, services: 3}, 'e.yaml')).message).toMatch(/^e\.yaml: services must be "all" or a list/)
    expect(errorOf(() => parseScenario({...minimal, population: {users: 1.5}}, 'f.yaml')).message).toBe('f.yaml: population.users must be an integer')
  })

  it('a file with broken YAML or an unknown name is a UserError', () => {
    const dir = mkdtempSync(join(tmpdir(), 'scn-'))
    const file = join(dir, 'broken.yaml')
    writeFileSync(file, 'name: [unclosed\n')
    expect(errorOf(() => loadScenario(file)).message).toMatch(/broken\.yaml: not valid YAML/)
    expect(errorOf(() => resolveScenarioPath('no-such-scenario')).hint).toMatch(/smoke/)
    expect(errorOf(() => resolveScenarioPath('smok')).message).toBe('Unknown scenario "smok". Did you mean smoke?')
    const good = join(dir, 'good.yaml')
    writeFileSync(good, JSON.stringify(minimal))
    expect(loadScenario(good).name).toBe('x')
  })

  it('flags override the file', () => {
    const s = loadScenario('burst-5k')
    const o = applyOverrides(s, {rate: 200, duration: '3s', seed: 9, population: 50, assert: ['dlq == 0']})
    expect(o.rate.stages).toEqual([{durationMs: 3000, target: 200, shape: 'step'}])
    expect(o.durationMs).toBe(3000)
    expect(o.seed).toBe(9)
    expect(o.population.users).toBe(50)
    expect(o.assert).toContain('dlq == 0')
    const e = applyOverrides(s, {events: 100})
    expect(e.events).toBe(100)
    expect(plannedDurationMs(e)).toBeNull()
    // --duration alone lifts the scenario's event cap; with --events both hold
    const capped = {...s, events: 2000}
    expect(applyOverrides(capped, {rate: 5000, duration: '30s'})).toMatchObject({events: null, durationMs: 30_000})
    expect(applyOverrides(capped, {duration: '30s', events: 500})).toMatchObject({events: 500, durationMs: 30_000})
    expect(applyOverrides(capped, {rate: 5000})).toMatchObject({events: 2000})
    expect(() => applyOverrides(s, {rate: -1})).toThrow(UserError)
    expect(() => applyOverrides(s, {duration: 'x'})).toThrow(UserError)
  })

  it('a warm-up is read from the file or --warmup, and must leave part of the run to measure', () => {
    expect(parseScenario(minimal, 'a.yaml').warmupMs).toBe(0)
    const warm = parseScenario({...minimal, rate: {stages: [{duration: '20s', target: 10}]}, warmup: '5s'}, 'a.yaml')
    expect(warm.warmupMs).toBe(5000)
    expect(applyOverrides(warm, {warmup: '0s'}).warmupMs).toBe(0)
    expect(applyOverrides(warm, {warmup: '2s'}).warmupMs).toBe(2000)
    // a run capped by events alone has no planned length to compare with
    expect(applyOverrides(warm, {events: 100, warmup: '1h'}).warmupMs).toBe(3_600_000)
    expect(errorOf(() => parseScenario({...minimal, warmup: '1s'}, 'b.yaml')).message).toBe(
      'b.yaml: warmup (1s) must be shorter than the run (1s): nothing would be measured',
    )
    expect(errorOf(() => parseScenario({...minimal, warmup: 'soon'}, 'c.yaml')).message).toMatch(/^c\.yaml: warmup must be a duration/)
    // a shorter --duration than the file's warm-up says which flags fix it
    const short = errorOf(() => applyOverrides(warm, {duration: '5s'}))
    expect(short.message).toBe('The warm-up (5s) must be shorter than the run (5s): nothing would be measured.')
    expect(short.hint).toMatch(/--warmup 0s/)
    expect(errorOf(() => applyOverrides(warm, {warmup: '30s'})).hint).toBe('Give a shorter --warmup or a longer --duration.')
    expect(errorOf(() => applyOverrides(warm, {warmup: 'x'})).message).toMatch(/^--warmup "x" is not a duration/)
  })

  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500)
    expect(parseDuration('1.5s')).toBe(1500)
    expect(parseDuration('10m')).toBe(600_000)
    expect(() => parseDuration('10 parsecs')).toThrow()
  })
})
