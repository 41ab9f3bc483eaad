/**
 * Simulator throughput: runs `tektree simulate` at increasing target rates on the in-process engine
 * (and on Redis when TEKTREE_REDIS_URL / --redis-url is given) and prints what was achieved:
 * simulated events/s, all events/s incl. derived, publish and delivery p95, backlog.
 *
 *   npx tsx bench/simulate.ts [--rates 500,1000,2000,5000] [--seconds 10] [--redis-url URL] [--no-services]
 */
import {parseArgs} from 'node:util'
import Table from 'cli-table3'
import {runSimulation} from '../src/simulator/run.js'
import {parseScenario} from '../src/simulator/scenario.js'

const {values} = parseArgs({
  options: {
    rates: {type: 'string', default: '500,1000,2000,5000'},
    seconds: {type: 'string', default: '10'},
    'redis-url': {type: 'string', default: process.env.TEKTREE_REDIS_URL},
    'mongo-url': {type: 'string', default: process.env.TEKTREE_MONGO_URL},
    'no-services': {type: 'boolean', default: false},
  },
})

const rates = values.rates!.split(',').map(Number)
const seconds = Number(values.seconds)
const targets: Array<{name: string; redisUrl?: string; mongoUrl?: string; inProcess?: boolean}> = [{name: 'in-process', inProcess: true}]
if (values['redis-url']) targets.push({name: 'redis', redisUrl: values['redis-url'], mongoUrl: values['mongo-url']})

const table = new Table({head: ['runtime', 'target/s', 'simulated/s', 'all/s', 'publish p95', 'delivery p95', 'max backlog', 'behind', 'drained']})
for (const target of targets) {
  for (const rate of rates) {
    const scenario = parseScenario(
      {
        name: `bench-${rate}`,
        seed: 1,
        population: {users: 20_000, areas: 40},
        rate: {shape: 'step', stages: [{duration: `${seconds}s`, target: rate}]},
        clock: {speed: 1},
      },
      'bench',
    )
    const report = await runSimulation(
      {scenario, redisUrl: target.redisUrl, mongoUrl: target.mongoUrl, inProcess: target.inProcess, drainTimeoutMs: 60_000, ...(values['no-services'] ? {services: []} : {})},
      {onProgress: (p) => process.stderr.write(`\r${target.name} ${rate}/s: sent ${p.sent} lag ${p.backlog}   `)},
    )
    process.stderr.write('\n')
    table.push([
      target.name,
      rate,
      report.rate.achieved.toFixed(0),
      report.rate.achievedTotal.toFixed(0),
      report.latency.publish.count ? `${report.latency.publish.p95.toFixed(2)} ms` : 'n/a',
      report.latency.delivery.count ? `${report.latency.delivery.p95.toFixed(2)} ms` : 'n/a',
      report.maxBacklog,
      report.rate.fellBehind ? 'yes' : 'no',
      report.drained ? 'yes' : `no (${report.drainMs} ms)`,
    ])
  }
}
console.log(table.toString())
console.log(`node ${process.version}, ${seconds}s per rate, services: ${values['no-services'] ? 'none' : 'TekTree (when present)'}`)
