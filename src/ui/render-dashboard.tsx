/**
 * renderDashboard: the one entry point commands call (they never touch components). It owns the
 * terminal while it runs: the alternate screen, Ink's raw-mode input, redraws on data, keys and
 * resize (Ink throttles them to a few a second), and gives the terminal back as it was on every
 * way out (q, Ctrl+C, the signal aborting, an error). Data comes from a DashboardFeed; keys go
 * through controller.ts; what is drawn is buildViewModel's.
 */
import {render} from 'ink'
import {handleKey, type Effect, type Key} from './controller.js'
import {Dashboard} from './Dashboard.js'
import type {DashboardFeed} from './feed.js'
import {KeyInput} from './KeyInput.js'
import {buildViewModel, initialUiState, type DashboardData, type UiState, type ViewModel} from './view-model.js'

export interface RenderDashboardOptions {
  feed: DashboardFeed
  stdout: NodeJS.WriteStream
  stdin: NodeJS.ReadStream
  /** Aborting it ends the dashboard (the command stopping, a signal). */
  signal: AbortSignal
  color: boolean
  /** Draw on the terminal's alternate screen, as full-screen programs do (default true). */
  alternateScreen?: boolean
}

/** Why the dashboard ended: `q`, Ctrl+C (the caller decides what else it means), or the signal. */
export type DashboardExit = 'quit' | 'interrupt' | 'aborted'

const ENTER_ALT = '\u001B[?1049h\u001B[H'
const LEAVE_ALT = '\u001B[?1049l'
const SHOW_CURSOR = '\u001B[?25h'

function App({model, onKey}: {readonly model: ViewModel; readonly onKey: (key: Key) => void}) {
  return (
    <>
      <Dashboard model={model} />
      <KeyInput onKey={onKey} />
    </>
  )
}

export async function renderDashboard(options: RenderDashboardOptions): Promise<DashboardExit> {
  const {feed, stdout, stdin, signal} = options
  const alternate = options.alternateScreen ?? true
  let ui: UiState = initialUiState()
  let shown: DashboardData = feed.data()
  let finish: (exit: DashboardExit) => void = () => undefined
  const finished = new Promise<DashboardExit>((resolve) => (finish = resolve))

  // Ink clears the whole terminal on each frame as tall as it: one row less keeps redraws in place.
  const size = () => ({columns: stdout.columns || 80, rows: Math.max(5, (stdout.rows || 24) - 1)})
  const model = () => buildViewModel(shown, ui, size(), {color: options.color})

  const onEffect = (effect: Effect | undefined) => {
    if (!effect) return
    if (effect.type === 'quit') finish('quit')
    else if (effect.type === 'retry') void feed.retry(effect.id).then(() => refresh())
  }
  const onKey = (key: Key) => {
    if (key.name === 'ctrl-c') return finish('interrupt')
    const result = handleKey(ui, key, shown)
    ui = result.ui
    feed.setUi(ui)
    if (!ui.paused) shown = feed.data()
    draw()
    onEffect(result.effect)
  }
  const refresh = () => {
    if (!ui.paused) shown = feed.data()
    draw()
  }

  if (alternate) stdout.write(ENTER_ALT)
  const instance = render(<App model={model()} onKey={onKey} />, {stdout, stdin, exitOnCtrlC: false, patchConsole: true, maxFps: 5})
  function draw() {
    instance.rerender(<App model={model()} onKey={onKey} />)
  }
  const onResize = () => {
    // A smaller terminal keeps lines of the old width on screen: start from a clean one.
    instance.clear()
    draw()
  }
  stdout.on('resize', onResize)
  // The tail moves faster than a reading a second: redraw it twice a second while it is open.
  const tailTimer = setInterval(() => {
    if (ui.view === 'tail' && !ui.paused) refresh()
  }, 500)
  const onAbort = () => finish('aborted')
  signal.addEventListener('abort', onAbort, {once: true})
  const feedStop = new AbortController()
  feed.setUi(ui)
  const running = feed.run(feedStop.signal).catch(() => undefined)
  const unsubscribe = setFeedListener(feed, refresh)
  try {
    return await finished
  } finally {
    unsubscribe()
    signal.removeEventListener('abort', onAbort)
    clearInterval(tailTimer)
    stdout.off('resize', onResize)
    feedStop.abort()
    instance.unmount()
    await instance.waitUntilExit().catch(() => undefined)
    if (alternate) stdout.write(LEAVE_ALT)
    stdout.write(SHOW_CURSOR)
    await running
  }
}

/** The feed calls back after each reading; the listener is swapped in here (a feed has one renderer). */
function setFeedListener(feed: DashboardFeed, listener: () => void): () => void {
  feed.listener = listener
  return () => {
    feed.listener = null
  }
}
