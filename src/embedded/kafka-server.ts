/**
 * Starts a single-node Apache Kafka broker (KRaft: broker and controller in one JVM) on loopback,
 * for the integration tests, the benchmarks and `tektree up --bus kafka`.
 *
 * The broker is the kafka_2.13 jar and its runtime dependencies from Maven Central
 * (scripts/provision-kafka.sh puts them in test/support/.cache/kafka-<version>/; TEKTREE_KAFKA_CP
 * names another classpath). Its data directory is formatted once (StorageTool format) and kept:
 * a restart on the same directory and ports finds its topics and offsets again.
 *
 * Small and quick on purpose (2 shared cores): a 128 MB heap, the serial GC and the C1 compiler
 * only start it in 2-4 s in ~200 MB RSS; the log cleaner's dedupe buffer (128 MiB by default)
 * would not fit such a heap, and group.initial.rebalance.delay.ms=0 spares every first join 3 s.
 * Readiness is the "Kafka Server started" line plus an open port, under a deadline, never a sleep.
 */
import {spawn, type ChildProcess} from 'node:child_process'
import {closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync} from 'node:fs'
import {connect} from 'node:net'
import {join} from 'node:path'
import {errorMessage, exited, findJava, freePort, onPath, packageRoot, runProgram as run, sleep, waitExit} from './child.js'

export {findJava}

export const KAFKA_VERSION = '4.1.2'

export const KAFKA_INSTALL_HINT =
  'run `bash scripts/provision-kafka.sh` (needs Java 17+, Maven and Maven Central), or set TEKTREE_KAFKA_CP to a classpath holding kafka_2.13 ' +
  KAFKA_VERSION

export interface StartKafkaServerOptions {
  /** Holds server.properties, the log and data/ (created when missing). */
  dir: string
  /** The client port; 0 or absent: a free one. */
  port?: number
  /** The controller port; 0 or absent: a free one. */
  controllerPort?: number
  /** Run the provisioning script when the jars are missing and `mvn` exists (default true). */
  provision?: boolean
  /** Own process group, output only to the log file (a server that outlives tektree: `up`). */
  detached?: boolean
  /** Bound on start-up (default 60 s). */
  readyTimeoutMs?: number
  /** Where ports not given come from (default: a free one from the OS; tests inject a taken one). */
  choosePort?: () => Promise<number>
  /** Told each JVM's pid as soon as it is spawned (the broker's, and the one formatting its directory): `up` stops them on Ctrl+C. */
  onSpawn?: (pid: number) => void
}

export interface KafkaServerHandle {
  /** kafka://127.0.0.1:<port> */
  url: string
  port: number
  controllerPort: number
  /** Pid of the current JVM (changes after restart()). */
  pid: number
  /** e.g. "kafka 4.1.2 (KRaft)". */
  version: string
  dir: string
  logFile: string
  /** SIGTERM (a controlled shutdown), SIGKILL after 15 s. Idempotent. */
  stop(): Promise<void>
  /** SIGKILL: a crash (fault tests). */
  kill9(): Promise<void>
  /** Stops (if running) and starts again on the same ports and directory. */
  restart(): Promise<void>
}

/** Where scripts/provision-kafka.sh puts the jars. */
export function kafkaCacheDir(root = packageRoot()): string {
  return join(root, 'test', 'support', '.cache', `kafka-${KAFKA_VERSION}`)
}

function jarsPresent(cache: string): boolean {
  // .complete is written last by the provision script: a half-finished download does not count.
  return existsSync(join(cache, '.complete')) && readdirSync(cache).some((name) => name === `kafka_2.13-${KAFKA_VERSION}.jar`)
}

/** TEKTREE_KAFKA_CP, else the provision cache (provisioned here on demand when allowed). */
export async function kafkaClasspath(options: {provision?: boolean} = {}): Promise<string> {
  const explicit = process.env.TEKTREE_KAFKA_CP
  if (explicit) return explicit
  const root = packageRoot()
  const cache = kafkaCacheDir(root)
  if (!jarsPresent(cache)) {
    const script = join(root, 'scripts', 'provision-kafka.sh')
    if (options.provision === false || !onPath('mvn') || !existsSync(script)) {
      throw new Error(`the Kafka jars are not in ${cache}: ${KAFKA_INSTALL_HINT}`)
    }
    try {
      await run('bash', [script], 300_000)
    } catch (error) {
      throw new Error(`provisioning the Kafka jars with Maven failed: ${errorMessage(error)}`)
    }
    if (!jarsPresent(cache)) throw new Error(`scripts/provision-kafka.sh ran but ${cache} has no kafka_2.13 jar`)
  }
  return `${cache}/*`
}

/** Whether a broker could be started here without provisioning (`up` uses it to explain). */
export function kafkaAvailable(): {ok: true} | {ok: false; reason: string} {
  if (!findJava()) return {ok: false, reason: 'java not found (install a JDK 17+, e.g. apt-get install openjdk-17-jdk-headless)'}
  if (process.env.TEKTREE_KAFKA_CP || jarsPresent(kafkaCacheDir())) return {ok: true}
  if (onPath('mvn') && existsSync(join(packageRoot(), 'scripts', 'provision-kafka.sh'))) return {ok: true}
  return {ok: false, reason: `the Kafka jars are not provisioned: ${KAFKA_INSTALL_HINT}`}
}

/** The JVM flags: small heap, serial GC, C1 only (see the header). */
export const KAFKA_JVM_FLAGS = ['-Xms64m', '-Xmx128m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-XX:+ExitOnOutOfMemoryError', '-Djava.awt.headless=true']

export function serverProperties(dir: string, port: number, controllerPort: number): string {
  return [
    '# Written by tektree (src/embedded/kafka-server.ts): a single-node KRaft broker on loopback.',
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names=CONTROLLER',
    'listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'inter.broker.listener.name=PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    // One node: every internal topic with one replica.
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    // tektree creates its topics with the catalog's partition counts; a typo must not make one.
    'auto.create.topics.enable=false',
    'group.initial.rebalance.delay.ms=0',
    // Its 128 MiB default does not fit a 128 MB heap.
    'log.cleaner.dedupe.buffer.size=4194304',
    'num.network.threads=2',
    'num.io.threads=2',
    'num.recovery.threads.per.data.dir=1',
    'background.threads=2',
    // Small segments keep a test topic's files small; retention checks often (trim by age).
    'log.segment.bytes=16777216',
    'log.retention.check.interval.ms=5000',
    // Lets a test's short session timeouts through (the broker's floor is 6 s by default).
    'group.min.session.timeout.ms=500',
    'group.consumer.min.session.timeout.ms=500',
    'group.consumer.min.heartbeat.interval.ms=100',
    '',
  ].join('\n')
}

const LOG4J2 = [
  'status = warn',
  'appender.out.type = Console',
  'appender.out.name = out',
  'appender.out.layout.type = PatternLayout',
  'appender.out.layout.pattern = [%d] %p %m (%c{1})%n',
  'rootLogger.level = WARN',
  'rootLogger.appenderRef.out.ref = out',
  'logger.raft.name = kafka.server.KafkaRaftServer',
  'logger.raft.level = INFO',
  '',
].join('\n')

export const STARTED_LINE = 'Kafka Server started'

/** True when something accepts a TCP connection on 127.0.0.1:port. */
export function portOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolveOpen) => {
    const socket = connect({host: '127.0.0.1', port})
    const done = (open: boolean) => {
      socket.destroy()
      resolveOpen(open)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/** The broker's log says a listener's port was taken. */
function lostPortRace(logFile: string): boolean {
  return /BindException|Address already in use/.test(readTail(logFile, 200_000))
}

function readTail(file: string, chars = 1_500): string {
  try {
    return readFileSync(file, 'utf8').trim().slice(-chars)
  } catch {
    return ''
  }
}

/**
 * Writes the configuration and formats the data directory once (a formatted one is kept). `onSpawn`
 * is told the formatting JVM's pid: it names <dir>/server.properties like the broker, and an
 * interrupted `up` must not leave it behind, holding the directory.
 */
export async function prepareKafkaDir(java: string, classpath: string, dir: string, port: number, controllerPort: number, onSpawn?: (pid: number) => void): Promise<string> {
  mkdirSync(join(dir, 'data'), {recursive: true})
  const config = join(dir, 'server.properties')
  writeFileSync(config, serverProperties(dir, port, controllerPort))
  writeFileSync(join(dir, 'log4j2.properties'), LOG4J2)
  if (!existsSync(join(dir, 'data', 'meta.properties'))) {
    // A random cluster id, made here rather than by a second JVM (StorageTool random-uuid): 16 bytes, URL-safe base64.
    const {randomBytes} = await import('node:crypto')
    let clusterId = randomBytes(16).toString('base64url')
    // One starting with '-' would read as an option (Kafka's own random ids avoid them too).
    while (clusterId.startsWith('-')) clusterId = randomBytes(16).toString('base64url')
    await run(java, [...KAFKA_JVM_FLAGS, `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', config], 60_000, onSpawn)
  }
  return config
}

export async function startKafkaServer(options: StartKafkaServerOptions): Promise<KafkaServerHandle> {
  const java = findJava()
  if (!java) throw new Error('java not found on PATH or in JAVA_HOME (install a JDK 17+, e.g. `apt-get install openjdk-17-jdk-headless`)')
  const classpath = await kafkaClasspath({provision: options.provision})
  mkdirSync(options.dir, {recursive: true})
  const portsGiven = Boolean(options.port && options.port > 0 && options.controllerPort && options.controllerPort > 0)
  let port = 0
  let controllerPort = 0
  const pickPort = options.choosePort ?? freePort
  const choosePorts = async () => {
    port = options.port && options.port > 0 ? options.port : await pickPort()
    controllerPort = options.controllerPort && options.controllerPort > 0 ? options.controllerPort : await pickPort()
    for (let i = 0; controllerPort === port && i < 10; i++) controllerPort = await pickPort()
  }
  await choosePorts()
  let config = await prepareKafkaDir(java, classpath, options.dir, port, controllerPort, options.onSpawn)
  const logFile = join(options.dir, 'kafka.log')
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000
  const args = () => [...KAFKA_JVM_FLAGS, `-Dlog4j2.configurationFile=${join(options.dir, 'log4j2.properties')}`, '-cp', classpath, 'kafka.Kafka', config]

  let child: ChildProcess | undefined

  const launch = async (): Promise<void> => {
    const fd = openSync(logFile, 'w')
    let spawned: ChildProcess
    try {
      spawned = spawn(java, args(), {stdio: ['ignore', fd, fd], detached: options.detached === true})
    } finally {
      closeSync(fd)
    }
    if (options.detached) spawned.unref()
    if (spawned.pid) options.onSpawn?.(spawned.pid)
    const spawnError = new Promise<Error>((resolveError) => spawned.once('error', resolveError))
    spawned.on('error', () => undefined) // reported through spawnError
    child = spawned
    const deadline = Date.now() + readyTimeoutMs
    for (let attempt = 0; attempt < 100_000; attempt++) {
      const failed = await Promise.race([spawnError, sleep(0).then(() => null)])
      if (failed) throw new Error(`cannot start ${java}: ${failed.message}`)
      if (exited(spawned)) {
        throw new Error(`kafka ${KAFKA_VERSION} exited with ${spawned.exitCode ?? spawned.signalCode} before it was ready:\n${readTail(logFile)}`)
      }
      if (readTail(logFile, 100_000).includes(STARTED_LINE) && (await portOpen(port))) return
      if (Date.now() >= deadline) break
      await sleep(100)
    }
    spawned.kill('SIGKILL')
    await waitExit(spawned, 5_000)
    throw new Error(`kafka ${KAFKA_VERSION} was not ready on 127.0.0.1:${port} within ${readyTimeoutMs} ms:\n${readTail(logFile)}`)
  }

  const stop = async (): Promise<void> => {
    const current = child
    if (!current || exited(current)) return
    current.kill('SIGTERM')
    if (await waitExit(current, 15_000)) return
    current.kill('SIGKILL')
    await waitExit(current, 5_000)
  }

  // A free port is only free until someone binds it: the tier starts redis-server and
  // mongo-java-server beside the broker, each on a port found the same way, and CI once saw the
  // broker lose that race (BindException). Ports chosen here are chosen again, a few times.
  for (let attempt = 1; ; attempt++) {
    try {
      await launch()
      break
    } catch (error) {
      if (portsGiven || attempt >= 3 || !lostPortRace(logFile)) throw error
      await choosePorts()
      config = await prepareKafkaDir(java, classpath, options.dir, port, controllerPort, options.onSpawn)
    }
  }

  return {
    url: `kafka://127.0.0.1:${port}`,
    port,
    controllerPort,
    get pid() {
      return child?.pid ?? -1
    },
    version: `kafka ${KAFKA_VERSION} (KRaft)`,
    dir: options.dir,
    logFile,
    stop,
    async kill9() {
      const current = child
      if (!current || exited(current)) return
      current.kill('SIGKILL')
      await waitExit(current, 5_000)
    },
    async restart() {
      await stop()
      await launch()
    },
  }
}


