import {Box} from 'ink'
import {LineView} from './LineView.js'
import type {Section, ViewModel} from './view-model.js'

/** A panel: its lines, one per row. */
export function SectionView({section, color}: {readonly section: Section; readonly color: boolean}) {
  return (
    <Box flexDirection="column">
      {section.lines.map((line, i) => (
        <LineView key={i} line={line} color={color} />
      ))}
    </Box>
  )
}

/** The whole screen: the view-model's sections top down, the notice and the help line at the bottom. */
export function Dashboard({model}: {readonly model: ViewModel}) {
  return (
    <Box flexDirection="column" width={model.width} height={model.height}>
      <Box flexDirection="column" flexGrow={1}>
        {model.sections.map((section, i) => (
          <SectionView key={`${section.id}-${i}`} section={section} color={model.color} />
        ))}
      </Box>
      {model.notice ? <LineView line={model.notice} color={model.color} /> : null}
      <LineView line={model.help} color={model.color} />
    </Box>
  )
}
