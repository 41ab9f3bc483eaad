/**
 * Starts the real servers the integration tier needs, once, and hands their URLs to the tests
 * through provide/inject. With CI=true a server that cannot be started fails the run; elsewhere the
 * suites that need it are skipped with the reason printed (never silently).
 */
import type {TestProject} from 'vitest/node'
import {startRedisServer} from './redis-server.js'
import {startMongoServer} from './mongo-server.js'
import {startKafkaServer} from './kafka-server.js'

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string | null
    redisUnavailable: string | null
    mongoUrl: string | null
    mongoUnavailable: string | null
    mongoServer: string | null
    kafkaUrl: string | null
    kafkaUnavailable: string | null
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const inCi = process.env.CI === 'true'
  const stops: Array<() => Promise<void>> = []

  // Started side by side, each on a port found free a moment before it binds it: one may lose that
  // race to another (CI saw the broker's BindException once). A server that failed is tried once
  // more, after the others are up.
  const once = async <T>(start: () => Promise<T>, first: PromiseSettledResult<T>): Promise<PromiseSettledResult<T>> =>
    first.status === 'fulfilled' ? first : start().then((value) => ({status: 'fulfilled' as const, value}), () => first)
  const firsts = await Promise.allSettled([startRedisServer(), startMongoServer(), startKafkaServer()])
  const redis = await once(startRedisServer, firsts[0])
  const mongo = await once(startMongoServer, firsts[1])
  const kafka = await once(startKafkaServer, firsts[2])
  for (const started of [redis, mongo, kafka]) if (started.status === 'fulfilled') stops.push(started.value.stop)
  // Failing the run must not leave the servers that did start running.
  const fail = async (message: string): Promise<never> => {
    await Promise.allSettled(stops.map((stop) => stop()))
    throw new Error(message)
  }

  if (redis.status === 'fulfilled') {
    project.provide('redisUrl', redis.value.url)
    project.provide('redisUnavailable', null)
  } else {
    const reason = String((redis.reason as Error)?.message ?? redis.reason)
    if (inCi) await fail(`CI=true and redis-server could not be started: ${reason}`)
    process.stderr.write(`\n[tektree tests] SKIPPING Redis integration suites: ${reason}\n`)
    project.provide('redisUrl', null)
    project.provide('redisUnavailable', reason)
  }

  if (mongo.status === 'fulfilled') {
    project.provide('mongoUrl', mongo.value.url)
    project.provide('mongoServer', mongo.value.server)
    project.provide('mongoUnavailable', null)
    process.stderr.write(`\n[tektree tests] MongoDB tests run against: ${mongo.value.server}\n`)
  } else {
    const reason = String((mongo.reason as Error)?.message ?? mongo.reason)
    if (inCi) await fail(`CI=true and no MongoDB wire-protocol server could be started: ${reason}`)
    process.stderr.write(`\n[tektree tests] SKIPPING MongoDB integration suites: ${reason}\n`)
    project.provide('mongoUrl', null)
    project.provide('mongoServer', null)
    project.provide('mongoUnavailable', reason)
  }

  if (kafka.status === 'fulfilled') {
    project.provide('kafkaUrl', kafka.value.url)
    project.provide('kafkaUnavailable', null)
  } else {
    const reason = String((kafka.reason as Error)?.message ?? kafka.reason)
    if (inCi) await fail(`CI=true and no Kafka broker could be started: ${reason}`)
    process.stderr.write(`\n[tektree tests] SKIPPING Kafka integration suites: ${reason}\n`)
    project.provide('kafkaUrl', null)
    project.provide('kafkaUnavailable', reason)
  }

  return async () => {
    await Promise.allSettled(stops.map((stop) => stop()))
  }
}
