import {useInput} from 'ink'
import {keysFromInk, type Key} from './controller.js'

/**
 * Hands every key to `onKey` and renders nothing: what a key does is decided outside the
 * components (controller.ts), by whoever renders the dashboard.
 */
export function KeyInput({onKey, active = true}: {readonly onKey: (key: Key) => void; readonly active?: boolean}) {
  useInput(
    (input, key) => {
      for (const k of keysFromInk(input, key)) onKey(k)
    },
    {isActive: active},
  )
  return null
}
