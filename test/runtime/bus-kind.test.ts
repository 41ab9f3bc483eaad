/**
 * <data-dir>/bus.json: the bus kind a directory last ran, which `up` brings back after `down`
 * (test/cli/up-bus.int.test.ts runs it end to end). A directory from before bus.json is read from
 * its data: only one bus' directory tells which; both or neither tell nothing.
 */
import {mkdirSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {busFilePath, readBusKind, recordBusKind} from '../../src/embedded/discovery.js'

describe('the bus a data dir last ran', () => {
  const dirs: string[] = []
  const fresh = () => {
    const dir = mkdtempSync(join(tmpdir(), 'tektree-bus-kind-'))
    dirs.push(dir)
    return dir
  }
  afterEach(() => {
    for (const dir of dirs.splice(0)) rmSync(dir, {recursive: true, force: true})
  })

  it('a fresh dir remembers none; a recorded kind is read back, and recording again replaces it', () => {
    const dir = fresh()
    expect(readBusKind(dir)).toBeNull()
    recordBusKind(dir, 'kafka')
    expect(readBusKind(dir)).toEqual({kind: 'kafka', source: 'recorded', path: busFilePath(dir)})
    recordBusKind(dir, 'redis')
    expect(readBusKind(dir)?.kind).toBe('redis')
  })

  it('without bus.json: only a formatted kafka/ means Kafka, only redis/ means redis-server, both or neither nothing', () => {
    const dir = fresh()
    mkdirSync(join(dir, 'kafka', 'data'), {recursive: true})
    expect(readBusKind(dir)).toBeNull() // never formatted: no broker ever ran there
    writeFileSync(join(dir, 'kafka', 'data', 'meta.properties'), 'node.id=1\n')
    expect(readBusKind(dir)).toMatchObject({kind: 'kafka', source: 'inferred'})
    mkdirSync(join(dir, 'redis'))
    expect(readBusKind(dir)).toBeNull()
    rmSync(join(dir, 'kafka'), {recursive: true})
    expect(readBusKind(dir)).toMatchObject({kind: 'redis', source: 'inferred'})
  })

  it('an unreadable bus.json falls back to the data, never throws', () => {
    const dir = fresh()
    writeFileSync(busFilePath(dir), '{not json')
    expect(readBusKind(dir)).toBeNull()
    writeFileSync(busFilePath(dir), JSON.stringify({bus: 'rabbitmq'}))
    mkdirSync(join(dir, 'redis'))
    expect(readBusKind(dir)).toMatchObject({kind: 'redis', source: 'inferred'})
  })
})
