import {Text} from 'ink'
import type {Line, Tone} from './view-model.js'

const COLORS: Record<Exclude<Tone, 'bold' | 'selected'>, string> = {ok: 'green', warn: 'yellow', bad: 'red', dim: 'gray'}

/** One fitted line: its segments, coloured only when `color` (the view-model fitted its width). */
export function LineView({line, color}: {readonly line: Line; readonly color: boolean}) {
  return (
    <Text wrap="truncate-end">
      {line.length === 0 ? ' ' : null}
      {line.map((seg, i) => {
        if (!color || !seg.tone) return <Text key={i}>{seg.text}</Text>
        if (seg.tone === 'bold') return <Text key={i} bold>{seg.text}</Text>
        if (seg.tone === 'selected') return <Text key={i} inverse>{seg.text}</Text>
        return <Text key={i} color={COLORS[seg.tone]}>{seg.text}</Text>
      })}
    </Text>
  )
}
