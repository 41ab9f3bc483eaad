/** fixtures/catalog/rules/gamification.yaml: its schema, its type, and pure functions over it. */
import {loadRulesFile} from '../rules.js'

export interface Achievement {
  id: string
  name: string
  category: 'content' | 'social' | 'streak' | 'community' | 'membership'
  counter?: string
  threshold?: number
  event?: string
}

export interface Quest {
  id: string
  name: string
  counter: string
  target: number
  reward_xp: number
}

export interface GamificationRules {
  levels: number[]
  counters: Record<string, {counter: string; target: string}>
  achievements: Achievement[]
  quests: Quest[]
  streaks: {milestones: number[]}
  leaderboards: {throttle_ms: number; top: number}
}

const id = {type: 'string', pattern: '^[a-z0-9_]+$'}
const SCHEMA = {
  type: 'object',
  required: ['levels', 'counters', 'achievements', 'quests', 'streaks', 'leaderboards'],
  additionalProperties: false,
  properties: {
    levels: {type: 'array', minItems: 1, items: {type: 'integer', minimum: 0}},
    counters: {
      type: 'object',
      additionalProperties: {type: 'object', required: ['counter', 'target'], additionalProperties: false, properties: {counter: id, target: {type: 'string'}}},
    },
    achievements: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'name', 'category'],
        additionalProperties: false,
        properties: {
          id,
          name: {type: 'string', minLength: 1},
          category: {enum: ['content', 'social', 'streak', 'community', 'membership']},
          counter: id,
          threshold: {type: 'integer', minimum: 1},
          event: {type: 'string'},
        },
        oneOf: [{required: ['counter', 'threshold']}, {required: ['event']}],
      },
    },
    quests: {
      type: 'array',
      items: {
        type: 'object',
        required: ['id', 'name', 'counter', 'target', 'reward_xp'],
        additionalProperties: false,
        properties: {id, name: {type: 'string'}, counter: id, target: {type: 'integer', minimum: 1}, reward_xp: {type: 'integer', minimum: 1}},
      },
    },
    streaks: {type: 'object', required: ['milestones'], properties: {milestones: {type: 'array', items: {type: 'integer', minimum: 2}}}},
    leaderboards: {
      type: 'object',
      required: ['throttle_ms', 'top'],
      properties: {throttle_ms: {type: 'integer', minimum: 0}, top: {type: 'integer', minimum: 1, maximum: 100}},
    },
  },
}

export function loadGamificationRules(rulesDir?: string): GamificationRules {
  const rules = loadRulesFile<GamificationRules>('gamification', SCHEMA, rulesDir)
  for (let i = 1; i < rules.levels.length; i++) {
    if (rules.levels[i] <= rules.levels[i - 1]) throw new Error(`gamification.yaml: levels must increase (levels[${i}] = ${rules.levels[i]})`)
  }
  return rules
}

/** The level a total XP reaches (1-based). */
export function levelForXp(levels: readonly number[], xp: number): number {
  let level = 1
  for (let i = 1; i < levels.length; i++) if (xp >= levels[i]) level = i + 1
  return level
}

/** The value an achievement or quest counter has in a profile (followers and streak are special). */
export function counterValue(profile: {counters?: Record<string, number>; streak?: {longest?: number}}, counter: string): number {
  if (counter === 'longest_streak') return profile.streak?.longest ?? 0
  return profile.counters?.[counter] ?? 0
}

export const ALL_TIME_BOARD = 'all-time'
export const weeklyBoard = (week: string) => `weekly:${week}`
export const areaBoard = (areaId: string) => `area:${areaId}`
