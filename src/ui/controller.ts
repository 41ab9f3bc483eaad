/**
 * What each key does: a pure function from the UI state and a key to the next state and, when the
 * key asks for work, an effect for the caller (quit, retry an entry). No terminal, no timers: the
 * renderer hands keys in, tests call it directly.
 */
import {TAB_VIEWS, type DashboardData, type UiState, visibleCauses, visibleGroups} from './view-model.js'

export type Key =
  | {name: 'up' | 'down' | 'enter' | 'escape' | 'tab' | 'shift-tab' | 'backspace' | 'ctrl-c' | 'page-up' | 'page-down'}
  | {name: 'char'; char: string}

export type Effect = {type: 'quit'} | {type: 'retry'; id: string} | {type: 'refresh'}

export interface KeyResult {
  ui: UiState
  effect?: Effect
}

/** Ink's (input, key) as one Key, or null for keys the dashboard does not use. */
export function keyFromInk(input: string, key: {meta?: boolean; upArrow?: boolean; downArrow?: boolean; return?: boolean; escape?: boolean; tab?: boolean; shift?: boolean; backspace?: boolean; delete?: boolean; ctrl?: boolean; pageUp?: boolean; pageDown?: boolean}): Key | null {
  if (key.ctrl && input === 'c') return {name: 'ctrl-c'}
  if (key.upArrow) return {name: 'up'}
  if (key.downArrow) return {name: 'down'}
  if (key.pageUp) return {name: 'page-up'}
  if (key.pageDown) return {name: 'page-down'}
  if (key.return) return {name: 'enter'}
  if (key.escape) return {name: 'escape'}
  if (key.tab) return {name: key.shift ? 'shift-tab' : 'tab'}
  if (key.backspace || key.delete) return {name: 'backspace'}
  if (key.ctrl) return null
  if (input.length === 1 && input >= ' ') return {name: 'char', char: input}
  return null
}

/**
 * Ink's (input, key) as Keys: usually one, several when the terminal delivered keys in one chunk
 * (typed fast, pasted, or sent by tmux send-keys): "jj\r" is j, j, Enter.
 */
export function keysFromInk(input: string, key: Parameters<typeof keyFromInk>[1]): Key[] {
  if (input.length <= 1 || input.includes('\u001b') || key.ctrl || key.meta) {
    const one = keyFromInk(input, key)
    return one ? [one] : []
  }
  const keys: Key[] = []
  for (const c of input) {
    if (c === '\r' || c === '\n') keys.push({name: 'enter'})
    else if (c === '\t') keys.push({name: 'tab'})
    else if (c === '\u007f' || c === '\b') keys.push({name: 'backspace'})
    else if (c === '\u0003') keys.push({name: 'ctrl-c'})
    else if (c >= ' ') keys.push({name: 'char', char: c})
  }
  return keys
}

const clamp = (n: number, length: number) => Math.max(0, Math.min(Math.max(0, length - 1), n))

/** The filter the current view edits. */
const filterKey = (ui: UiState): keyof UiState['filters'] => (ui.view === 'dlq' ? 'dlq' : ui.view === 'tail' ? 'tail' : 'overview')

export function handleKey(ui: UiState, key: Key, data: DashboardData): KeyResult {
  if (key.name === 'ctrl-c') return {ui, effect: {type: 'quit'}}
  const char = key.name === 'char' ? key.char : null

  if (ui.editing) {
    const which = filterKey(ui)
    const text = ui.filters[which]
    if (key.name === 'enter') return {ui: {...ui, editing: false}, effect: {type: 'refresh'}}
    if (key.name === 'escape') return {ui: {...ui, editing: false, filters: {...ui.filters, [which]: ''}, groupIndex: 0, causeIndex: 0}, effect: {type: 'refresh'}}
    if (key.name === 'backspace') return {ui: {...ui, filters: {...ui.filters, [which]: [...text].slice(0, -1).join('')}, groupIndex: 0, causeIndex: 0}}
    if (char !== null && text.length < 60) return {ui: {...ui, filters: {...ui.filters, [which]: text + char}, groupIndex: 0, causeIndex: 0}}
    return {ui}
  }

  if (ui.confirm) {
    if (char === 'y' || char === 'Y') return {ui: {...ui, confirm: false}, effect: data.entry ? {type: 'retry', id: data.entry.id} : undefined}
    if (char === 'q') return {ui, effect: {type: 'quit'}}
    return {ui: {...ui, confirm: false}}
  }

  if (ui.help) {
    if (char === 'q') return {ui, effect: {type: 'quit'}}
    if (char === '?' || key.name === 'escape' || key.name === 'enter') return {ui: {...ui, help: false}}
    return {ui}
  }

  if (char === 'q') return {ui, effect: {type: 'quit'}}
  if (char === '?') return {ui: {...ui, help: true}}
  if (char === ' ') return {ui: {...ui, paused: !ui.paused}}
  if (key.name === 'tab' || key.name === 'shift-tab') {
    const base = ui.view === 'group' ? 'overview' : ui.view === 'entry' ? 'dlq' : ui.view
    const i = TAB_VIEWS.indexOf(base)
    const next = TAB_VIEWS[(i + (key.name === 'tab' ? 1 : TAB_VIEWS.length - 1)) % TAB_VIEWS.length]
    return {ui: {...ui, view: next}, effect: {type: 'refresh'}}
  }

  const move = key.name === 'up' || char === 'k' ? -1 : key.name === 'down' || char === 'j' ? 1 : key.name === 'page-up' ? -10 : key.name === 'page-down' ? 10 : 0
  switch (ui.view) {
    case 'overview': {
      const groups = visibleGroups(data, ui)
      if (move !== 0) return {ui: {...ui, groupIndex: clamp(ui.groupIndex + move, groups.length)}}
      if (key.name === 'enter' && groups.length > 0) return {ui: {...ui, view: 'group', openGroup: groups[clamp(ui.groupIndex, groups.length)].group}, effect: {type: 'refresh'}}
      if (char === '/') return {ui: {...ui, editing: true}}
      if (key.name === 'escape' && ui.filters.overview) return {ui: {...ui, filters: {...ui.filters, overview: ''}}}
      return {ui}
    }
    case 'group':
      if (key.name === 'escape' || key.name === 'backspace') return {ui: {...ui, view: 'overview'}}
      return {ui}
    case 'dlq': {
      const causes = visibleCauses(data, ui)
      if (move !== 0) return {ui: {...ui, causeIndex: clamp(ui.causeIndex + move, causes.length)}}
      if (key.name === 'enter' && causes.length > 0) return {ui: {...ui, view: 'entry', openCause: causes[clamp(ui.causeIndex, causes.length)].fingerprint}, effect: {type: 'refresh'}}
      if (char === '/') return {ui: {...ui, editing: true}}
      if (key.name === 'escape') return {ui: ui.filters.dlq ? {...ui, filters: {...ui.filters, dlq: ''}} : {...ui, view: 'overview'}}
      return {ui}
    }
    case 'entry':
      if (char === 'r' && data.entry) return {ui: {...ui, confirm: true}}
      if (key.name === 'escape' || key.name === 'backspace') return {ui: {...ui, view: 'dlq', openCause: null}}
      return {ui}
    case 'tail':
      if (char === '/') return {ui: {...ui, editing: true}}
      if (key.name === 'escape') return {ui: {...ui, view: 'overview'}}
      return {ui}
  }
}
