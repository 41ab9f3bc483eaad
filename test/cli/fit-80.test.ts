/**
 * Output fits 80 columns (issue 12, item 14): `tektree status` and `tektree catalog list` rendered
 * at width 80, with colour and without, including long paths, notes and a long third-party catalog.
 */
import {describe, expect, it} from 'vitest'
import {createStyle, stripAnsi, visibleWidth} from '../../src/cli/style.js'
import {renderCatalogList, type CatalogListResult} from '../../src/commands/catalog/list.js'
import {renderStatus, type StatusResult} from '../../src/commands/status.js'
import {loadCatalog} from '../../src/catalog/load.js'

const styles = [createStyle({isTTY: false}), createStyle({isTTY: true, columns: 80}, {env: {}})]

function expectFits(lines: string[], width = 80): void {
  expect(lines.length).toBeGreaterThan(0)
  for (const line of lines) expect(visibleWidth(line), stripAnsi(line)).toBeLessThanOrEqual(width)
}

const dataDir = '/home/someone/projects/a-rather-long-project-name/with/nested/folders/.tektree'

describe('tektree status at 80 columns', () => {
  const up: StatusResult = {
    data_dir: dataDir,
    discovery_file: `${dataDir}/runtime.json`,
    state: 'partial',
    uptime_ms: 3_700_000,
    bus: {state: 'dead', mode: 'embedded', kind: 'redis', url: 'redis://127.0.0.1:45635', pid: 4242, alive: false, port: 45635, version: 'redis-server 7.0.15', data_dir: `${dataDir}/redis`, persistent: true},
    store: {state: 'unresponsive', mode: 'file', kind: 'sqlite', path: `${dataDir}/store.db`, version: 'SQLite 3.53.2', size_bytes: 123_456_789, events: 1_234_567, error: 'SQLITE_CORRUPT: database disk image is malformed (the file is not a SQLite database or was truncated)'},
    cleaned: 'a discovery entry of a command that is gone (pid 999, tektree simulate --scenario steady-1k --verify)',
    overrides: {bus_url: 'redis://user:****@a-very-long-host-name.internal.example.com:6379/0', store_url: 'mongodb://user:****@another-long-host.internal.example.com:27017/tektree'},
  }
  const down: StatusResult = {
    data_dir: dataDir,
    discovery_file: null,
    state: 'down',
    bus: {state: 'absent', mode: 'per-command', kind: 'redis', note: 'a command that needs it starts redis-server in <data-dir>/redis for its run, and others attach to it meanwhile (`tektree up` keeps one running)'},
    store: {state: 'absent', mode: 'file', kind: 'sqlite', path: `${dataDir}/store.db`, version: 'SQLite 3.53.2'},
    overrides: {},
  }

  it('every line fits, with nothing lost: long notes and paths wrap under their part', () => {
    for (const style of styles) {
      for (const s of [up, down]) {
        const lines = renderStatus(s, style)
        expectFits(lines)
        const text = stripAnsi(lines.join('\n')).replace(/\n +/g, ' ')
        expect(text.replace(/ /g, '')).toContain(`${dataDir}/store.db`)
      }
    }
    const text = stripAnsi(renderStatus(up, styles[0]).join('\n'))
    expect(text).toMatch(/^ {2}bus {3}redis-server 7\.0\.15 at redis:\/\/127\.0\.0\.1:45635: DEAD/m)
    expect(text).toMatch(/^ {8}data:/m)
    expect(stripAnsi(renderStatus(down, styles[0]).join('\n'))).toMatch(/^ {2}bus {3}not running: a command that needs it/m)
  })
})

describe('tektree catalog list at 80 columns', () => {
  const entry = (type: string, consumers: string[], aliases: string[] = []) => ({
    type,
    version: '12.10.3',
    aliases,
    domain: type.split('.')[0],
    topic: type.split('.')[0],
    producer: 'a-producer-service',
    consumers,
    retention: {category: 'compliance-archive', period: 'indefinite', storage: 'event-store'},
    partitionKey: 'id',
  })
  const long: CatalogListResult = {
    catalog: {source: 'x.yaml', title: 'Someone Else\'s Rather Long Catalog Title', version: '3.2.1', asyncapi: '3.0.0', tektree: false},
    events: Array.from({length: 40}, (_, i) =>
      entry(
        `com.example.platform.domain${i}.some_really_long_event_name_that_goes_on.v${i}`,
        ['gamification', 'notification', 'search', 'analytics', 'realtime', 'a-consumer-with-a-long-name'],
        i % 5 === 0 ? [`com.example.legacy.alias_${i}`] : [],
      ),
    ),
    problems: [{type: 'com.example.binary', code: 'UNSUPPORTED_PAYLOAD', message: 'an Avro payload: tektree validates JSON Schema payloads only, so this message is listed and skipped'} as never],
  }

  it('the shipped catalog fits, every type and its consumers shown', async () => {
    const catalog = await loadCatalog()
    const result = {catalog: {source: '', title: catalog.title, version: catalog.version, asyncapi: catalog.asyncapi, tektree: true}, events: catalog.events.map((e) => ({type: e.type, version: e.version, aliases: e.aliases, domain: e.domain, topic: e.topic, producer: e.producer, consumers: e.consumers.map((c) => c.service), retention: e.retention ? {category: e.retention.category, period: '1y', storage: e.retention.storage} : null, partitionKey: e.partitionKey})), problems: []}
    for (const style of styles) {
      const lines = renderCatalogList(result, style)
      expectFits(lines)
      const text = stripAnsi(lines.join('\n'))
      for (const e of result.events) expect(text).toContain(e.type)
      expect(text).toMatch(/^ {2}consumed by gamification, payment, email$/m)
    }
  })

  it('a long catalog fits too; on a wide terminal each type is one row', () => {
    for (const style of styles) expectFits(renderCatalogList(long, style))
    const wide = renderCatalogList(long, createStyle({isTTY: true, columns: 250}, {color: false}))
    expectFits(wide, 250)
    expect(wide.some((l) => l.includes('consumed by'))).toBe(false)
    expect(wide.find((l) => l.startsWith('com.example.platform.domain0.'))).toMatch(/^com\.example\.platform\.domain0\.\S+ +12\.10\.3 +a-producer-service +compliance-archive indefinite +gamification, notification/)
  })
})

describe('tektree catalog show at 80 columns', () => {
  it("the header lines fit, for the type whose line was longest (social.content.liked's was 108)", async () => {
    const {requireBuild, runCli} = await import('./run-cli.js')
    requireBuild()
    const result = await runCli(['catalog', 'show', 'social.content.liked'], {env: {NO_COLOR: '1'}})
    expect(result.code).toBe(0)
    const lines = result.stdout.split('\n')
    const header = lines.slice(0, lines.indexOf(''))
    expect(header.join('\n')).toContain('retention: ')
    expectFits(header)
  })
})
