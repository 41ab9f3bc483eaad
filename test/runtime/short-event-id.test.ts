/**
 * Short event ids on a line (tail, trace, the dashboard, archive query) tell events apart: an
 * ordered id's first 8 characters are its time, the same for every event of about a minute and,
 * for a derived event, its cause's; every line of a run showed the same "d86c0000".
 */
import {describe, expect, it} from 'vitest'
import {derivedEventId, newEventId, shortEventId} from '../../src/core/event-id.js'
import {line} from '../../src/commands/tail.js'

describe('shortEventId', () => {
  it('differs between events of one minute, and between a cause and what it derives', () => {
    const now = Date.now()
    const ids = Array.from({length: 50}, () => newEventId(now))
    expect(new Set(ids.map((id) => id.slice(0, 8))).size).toBe(1)
    expect(new Set(ids.map(shortEventId)).size).toBe(50)
    const derived = [0, 1, 2].map((n) => derivedEventId(ids[0], 'gamification', 'gamification.xp.earned', n))
    expect(new Set([ids[0], ...derived].map(shortEventId)).size).toBe(4)
    expect(shortEventId('abc')).toBe('abc')
  })

  it('is what a tail line shows', () => {
    const id = newEventId()
    const shown = line({delivery: {id: '1-0', topic: 't', partition: 2, key: 'k', value: '{}', headers: {event_type: 'user.registered', event_id: id}, deliveryCount: 0, enqueuedAt: Date.now()}, envelope: null})
    expect(shown).toMatch(new RegExp(`  ${shortEventId(id)}  p2$`))
  })
})
