/**
 * The dashboard's view-model: what each view shows from fixed data, that every line fits the
 * terminal and the lines fit its height, the order panels give way in, and the key handling.
 */
import {describe, expect, it} from 'vitest'
import {handleKey, keyFromInk, keysFromInk, type Key} from '../../src/ui/controller.js'
import {buildViewModel, DROP_ORDER, fit, initialUiState, lineText, lineWidth, sparkline, tailFilter, type UiState, type ViewModel} from '../../src/ui/view-model.js'
import {busyData, cause, entry} from './fixtures.js'

const lines = (vm: ViewModel) => [...vm.sections.flatMap((s) => s.lines), ...(vm.notice ? [vm.notice] : []), vm.help]
const text = (vm: ViewModel) => lines(vm).map(lineText).join('\n')

function expectFits(vm: ViewModel) {
  for (const line of lines(vm)) expect(lineWidth(line), lineText(line)).toBeLessThanOrEqual(vm.width)
  expect(lines(vm).length).toBeLessThanOrEqual(vm.height)
}

const press = (ui: UiState, ...keys: Key[]) => keys.reduce((state, key) => handleKey(state, key, busyData()).ui, ui)
const ch = (char: string): Key => ({name: 'char', char})

describe('view-model: the overview', () => {
  it('shows header, throughput, latency against the targets, groups, the DLQ and the types at 120x40', () => {
    const vm = buildViewModel(busyData(), initialUiState(), {columns: 120, rows: 40})
    const screen = text(vm)
    expect(screen).toContain('bus redis redis://admin:****@127.0.0.1:6390')
    expect(screen).not.toContain('secret')
    expect(screen).toContain('2 processes (simulate, services)  3 workers')
    expect(screen).toContain('up 3m12s')
    expect(screen).toMatch(/IN\s+1,235\/s/)
    expect(screen).toMatch(/OUT\s+1,180\/s/)
    expect(screen).toMatch(/publish\s+p50 1\.2ms\s+p95 4\.5ms\s+p99 9\.1ms\s+target p95 < 10ms ok/)
    expect(screen).toMatch(/delivery\s+p50 40ms\s+p95 150ms\s+p99 300ms\s+target p95 < 100ms OVER/)
    expect(screen).toContain('> analytics')
    expect(screen).toContain('gamification')
    expect(screen).toContain('DLQ 120 entries, alert above 100: OVER')
    expect(screen).toContain('card <n> declined (cause 0)')
    expect(screen.indexOf('social.content.liked')).toBeLessThan(screen.indexOf('knowledge.question.posted'))
    expect(vm.dropped).toEqual([])
    expectFits(vm)
  })

  it('at 80x24 fits, keeps header and help line, and gives way in the stated order', () => {
    const vm = buildViewModel(busyData(), initialUiState(), {columns: 80, rows: 24})
    expectFits(vm)
    expect(vm.sections[0].id).toBe('header')
    expect(lineText(vm.help)).toContain('q quit')
    const ids = vm.sections.map((s) => s.id)
    expect(ids).toEqual(['header', 'throughput', 'latency', 'groups', 'dlq', 'types'])
    // The types gave rows first (3 fit at 120x40; the DLQ keeps its causes while types shrink).
    const types = vm.sections.find((s) => s.id === 'types')!
    expect(types.lines.length).toBeLessThan(4)
  })

  it('drops whole panels in DROP_ORDER when the terminal is short', () => {
    const short = buildViewModel(busyData(), initialUiState(), {columns: 80, rows: 12})
    expectFits(short)
    expect(short.dropped).toEqual(DROP_ORDER.slice(0, short.dropped.length))
    expect(short.dropped).toContain('types')
    expect(short.sections.map((s) => s.id)).toContain('header')
    const tiny = buildViewModel(busyData(), initialUiState(), {columns: 80, rows: 6})
    expect(tiny.dropped.length).toBeGreaterThan(short.dropped.length)
    expectFits(tiny)
  })

  it('keeps the selected group in sight when rows are cut', () => {
    const ui = {...initialUiState(), groupIndex: 8}
    const vm = buildViewModel(busyData(), ui, {columns: 80, rows: 14})
    const groups = vm.sections.find((s) => s.id === 'groups')!
    expect(groups.lines.map(lineText).join('\n')).toContain('> user')
    expect(lineText(groups.lines[0])).toMatch(/GROUPS \(\d of 9\)/)
  })

  it('cuts long names with an ellipsis instead of wrapping', () => {
    const data = busyData({runtime: {bus: {kind: 'redis', location: `redis://127.0.0.1:6390/${'x'.repeat(200)}`}, store: {kind: 'sqlite', location: 'sqlite:/s.db'}}})
    const vm = buildViewModel(data, initialUiState(), {columns: 80, rows: 24})
    expect(lineText(vm.sections[0].lines[0]).endsWith('…')).toBe(true)
    expectFits(vm)
  })

  it('says when no process shares metrics and nothing was measured', () => {
    const data = busyData({processes: [], rates: null, latency: {publish: {count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0}, delivery: {count: 0, p50: 0, p95: 0, p99: 0, max: 0, mean: 0}}, types: []})
    const screen = text(buildViewModel(data, initialUiState(), {columns: 80, rows: 24}))
    expect(screen).toContain('no process shares metrics yet')
    expect(screen).toMatch(/IN\s+-\/s/)
    expect(screen).toContain('(no events in 10s)')
  })

  it('a notice (a retry sent) sits above the help line, and the panels make room for it', () => {
    const vm = buildViewModel(busyData({notice: 'sent payment:id-0-a back to payment'}), initialUiState(), {columns: 80, rows: 24})
    expect(lineText(vm.notice!)).toBe('sent payment:id-0-a back to payment')
    expectFits(vm)
  })

  it('colours only when asked: tones are data, the component decides', () => {
    expect(buildViewModel(busyData(), initialUiState(), {columns: 80, rows: 24}).color).toBe(false)
    expect(buildViewModel(busyData(), initialUiState(), {columns: 80, rows: 24}, {color: true}).color).toBe(true)
  })
})

describe('view-model: the other views', () => {
  it('a group: its topics, partitions with owners, consumers', () => {
    const ui = press(initialUiState(), {name: 'down'}, {name: 'down'}, {name: 'down'}, {name: 'enter'})
    expect(ui.view).toBe('group')
    expect(ui.openGroup).toBe('gamification')
    const vm = buildViewModel(busyData(), ui, {columns: 80, rows: 24})
    const screen = text(vm)
    expect(screen).toContain('tektree.knowledge')
    expect(screen).toContain('p0 gamification-host')
    expect(screen).toContain('p1 (no owner)')
    expect(screen).toContain('CONSUMERS (1)')
    expect(lineText(vm.help)).toContain('Esc back')
    expectFits(vm)
  })

  it('the DLQ: count against the threshold, causes, an entry, the retry question', () => {
    let ui = press(initialUiState(), {name: 'tab'})
    expect(ui.view).toBe('dlq')
    let screen = text(buildViewModel(busyData(), ui, {columns: 80, rows: 24}))
    expect(screen).toContain('DLQ 120 entries, alert above 100: OVER')
    expect(screen).toMatch(/> +50 +payment/)
    ui = press(ui, ch('j'), {name: 'enter'})
    expect(ui.view).toBe('entry')
    expect(ui.openCause).toBe(busyData().dlq!.causes[1].fingerprint)
    const data = busyData({entry: entry()})
    const asked = handleKey(ui, ch('r'), data)
    expect(asked.ui.confirm).toBe(true)
    const vm = buildViewModel(data, asked.ui, {columns: 80, rows: 24})
    screen = text(vm)
    expect(screen).toContain('HANDLER_FAILED: card 4242 declined')
    expect(screen).toContain('Retry payment:id-0-a?')
    expect(lineText(vm.help)).toContain('y retry')
    expectFits(vm)
    expect(handleKey(asked.ui, ch('y'), data).effect).toEqual({type: 'retry', id: 'payment:id-0-a'})
    expect(handleKey(asked.ui, ch('n'), data)).toEqual({ui: {...asked.ui, confirm: false}})
  })

  it('the tail: lines newest last, the type filter typed with /', () => {
    let ui = press(initialUiState(), {name: 'tab'}, {name: 'tab'})
    expect(ui.view).toBe('tail')
    ui = press(ui, ch('/'), ch('s'), ch('o'), ch('c'), ch('i'), ch('a'), ch('l'), ch('.'), ch('*'))
    expect(ui.editing).toBe(true)
    expect(ui.filters.tail).toBe('social.*')
    const result = handleKey(ui, {name: 'enter'}, busyData())
    expect(result.ui.editing).toBe(false)
    expect(result.effect).toEqual({type: 'refresh'})
    const screen = text(buildViewModel(busyData(), result.ui, {columns: 80, rows: 24}))
    expect(screen).toContain('type filter "social.*"')
    expect(screen).toMatch(/social\.content\.liked +aggregat +456789ab +p3/)
    expect(tailFilter('social.* Liked')).toEqual({globs: ['social.*'], words: ['liked']})
    expect(tailFilter(' ')).toEqual({globs: [], words: []})
  })

  it('help lists the keys; ? and Esc close it', () => {
    const ui = press(initialUiState(), ch('?'))
    const screen = text(buildViewModel(busyData(), ui, {columns: 80, rows: 24}))
    expect(screen).toContain('KEYS')
    expect(screen).toContain('pause / resume updates')
    expect(press(ui, {name: 'escape'}).help).toBe(false)
  })
})

describe('keys', () => {
  it('q and Ctrl+C quit from anywhere, also while help is open', () => {
    expect(handleKey(initialUiState(), ch('q'), busyData()).effect).toEqual({type: 'quit'})
    expect(handleKey({...initialUiState(), help: true}, ch('q'), busyData()).effect).toEqual({type: 'quit'})
    expect(handleKey({...initialUiState(), editing: true}, {name: 'ctrl-c'}, busyData()).effect).toEqual({type: 'quit'})
    // While typing a filter, q is a letter.
    expect(handleKey({...initialUiState(), editing: true}, ch('q'), busyData()).ui.filters.overview).toBe('q')
  })

  it('space pauses; Tab cycles; selection stays within the list; / filters the groups', () => {
    expect(press(initialUiState(), ch(' ')).paused).toBe(true)
    expect(press(initialUiState(), {name: 'tab'}, {name: 'tab'}, {name: 'tab'}).view).toBe('overview')
    expect(press(initialUiState(), {name: 'shift-tab'}).view).toBe('tail')
    expect(press(initialUiState(), {name: 'up'}).groupIndex).toBe(0)
    expect(press(initialUiState(), ...Array.from({length: 20}, () => ch('j'))).groupIndex).toBe(8)
    const ui = press(initialUiState(), ch('/'), ch('p'), ch('a'), ch('y'), {name: 'enter'})
    const vm = buildViewModel(busyData(), ui, {columns: 80, rows: 24})
    const groups = vm.sections.find((s) => s.id === 'groups')!.lines.map(lineText)
    expect(groups.some((l) => l.includes('payment'))).toBe(true)
    expect(groups.some((l) => l.includes('analytics'))).toBe(false)
  })

  it("Ink's keys map to the dashboard's", () => {
    expect(keyFromInk('c', {ctrl: true})).toEqual({name: 'ctrl-c'})
    expect(keyFromInk('', {upArrow: true})).toEqual({name: 'up'})
    expect(keyFromInk('', {tab: true, shift: true})).toEqual({name: 'shift-tab'})
    expect(keyFromInk('j', {})).toEqual({name: 'char', char: 'j'})
    expect(keyFromInk('x', {ctrl: true})).toBeNull()
    // Keys that arrive in one chunk (typed fast, pasted, tmux send-keys) are each handled.
    expect(keysFromInk('jj\r\t', {})).toEqual([{name: 'char', char: 'j'}, {name: 'char', char: 'j'}, {name: 'enter'}, {name: 'tab'}])
    expect(keysFromInk('', {escape: true})).toEqual([{name: 'escape'}])
  })
})

describe('view-model: untrusted text from the bus', () => {
  it('the tail, the DLQ causes, an entry and the notice show control characters escaped (Ink would print them raw)', () => {
    const hostile = '\u001b]52;c;cm0gLXJmIH4K\u0007\u001b[2J\u0000\u009b31m'
    const data = busyData({
      dlq: {total: 1, threshold: 100, causes: [cause(0, {event_type: `x${hostile}`, message: `Not valid JSON: ${hostile}`})]},
      entry: {...entry(), event_type: `x${hostile}`, envelope: null, raw: `${hostile}\r\nline 2\tend`, error: {error: {code: 'INVALID_JSON', message: hostile, details: {}}}},
      tail: {lines: [{at: Date.parse('2026-11-30T12:00:00.000Z'), type: `social.${hostile}`, key: '\u001b[2Jkey', id: '\u009b2J', partition: 0}], error: null},
      notice: `retry failed: ${hostile}`,
    })
    const views: UiState[] = [initialUiState(), press(initialUiState(), {name: 'tab'}), {...initialUiState(), view: 'entry', openCause: 'x'}, press(initialUiState(), {name: 'tab'}, {name: 'tab'})]
    const screens = views.map((ui) => text(buildViewModel(data, ui, {columns: 200, rows: 40})))
    expect(screens.map((_, i) => views[i].view)).toEqual(['overview', 'dlq', 'entry', 'tail'])
    for (const screen of screens) expect(screen).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/)
    expect(screens[1]).toContain('x\\u001b]52;c;cm0gLXJmIH4K\\u0007\\u001b[2J\\u0000\\u009b31m')
    expect(screens[2]).toContain('raw bytes\n\\u001b]52;c;')
    expect(screens[2]).toContain('\\u001b[2J\\u0000\\u009b31m\\r\nline 2 end')
    expect(screens[3]).toContain('social.\\u001b]52;c;')
    expect(screens[3]).toContain('retry failed: \\u001b]52;c;')
  })
})

describe('helpers', () => {
  it('fit cuts by columns and marks the cut', () => {
    expect(lineText(fit([{text: 'abcdef'}, {text: 'ghij'}], 5))).toBe('abcd…')
    expect(lineText(fit([{text: 'abc'}], 5))).toBe('abc')
  })
  it('sparkline scales to the largest value', () => {
    expect(sparkline([0, 0])).toBe('▁▁')
    expect(sparkline([0, 50, 100])).toBe('▁▅█')
  })
})
