// Segment's actions-core delivering the same events as Sluice's delivery benchmark.
//
// usage: node bench.js SINK_URL EVENTS CONCURRENCY BATCH   (BATCH 0 = one event per request)
//        node bench.js --dump N                            (print the first N payloads)
//
// A destination "BenchWebhook" with one action mirroring Sluice's Webhook actions: the
// filter is a subscription every event matches (Sluice's "all events" feed), the mapping
// takes the URL from settings and the whole event as the body; perform POSTs one event,
// performBatch POSTs {"events": [...]}. Events are built one at a time (nothing stored), so
// the peak RSS measured here is the framework's own, not a queue's.
'use strict'

const crypto = require('crypto')
const fs = require('fs')
const { Destination } = require('@segment/actions-core')

// The same payload as bench/common.py sample_event(i), with the fields Sluice's collect API
// adds on acceptance, and the "type" every Segment event carries.
function sampleEvent(i) {
  return {
    type: 'track',
    tealium_account: 'bench',
    tealium_profile: 'main',
    tealium_event: i % 3 === 0 ? 'purchase' : 'page_view',
    tealium_visitor_id: `visitor-${i % 5000}`,
    page_path: '/products/trail-runner',
    order_id: `A${i}`,
    order_total: 42.5 + (i % 100),
    currency: 'EUR',
    consent_categories: ['analytics', 'email'],
    event_id: crypto.randomUUID(),
    received_at: '2026-11-28T10:00:00.000Z'
  }
}

const definition = {
  name: 'BenchWebhook',
  mode: 'cloud',
  authentication: {
    scheme: 'custom',
    fields: {
      url: { label: 'URL', description: 'Where to send', type: 'string', required: true }
    }
  },
  actions: {
    send: {
      title: 'Send',
      description: 'Send the event as JSON',
      defaultSubscription: 'type = "track"',
      fields: {
        data: {
          label: 'Data',
          description: 'The body',
          type: 'object',
          default: { '@path': '$.' }
        },
        enable_batching: { label: 'Batch', description: 'Batch', type: 'boolean' },
        batch_size: { label: 'Size', description: 'Size', type: 'number' }
      },
      perform: (request, { settings, payload }) =>
        request(settings.url, { method: 'POST', json: payload.data }),
      performBatch: (request, { settings, payload }) =>
        request(settings.url, { method: 'POST', json: { events: payload.map((p) => p.data) } })
    }
  }
}

function check(results) {
  for (const r of results) {
    if (r.multistatus) {
      for (const s of r.multistatus) if (s.status < 200 || s.status >= 300) return false
    } else if (r.error || (typeof r.output === 'string' && r.output.startsWith('Invalid'))) {
      return false
    }
  }
  return true
}

async function main() {
  if (process.argv[2] === '--dump') {
    const n = Number(process.argv[3])
    for (let i = 0; i < n; i++) console.log(JSON.stringify(sampleEvent(i)))
    return
  }
  const [url, eventsArg, concurrencyArg, batchArg] = process.argv.slice(2)
  const events = Number(eventsArg)
  const concurrency = Number(concurrencyArg)
  const batch = Number(batchArg)
  const destination = new Destination(definition)
  const settings = {
    url,
    subscription: {
      name: 'Send',
      partnerAction: 'send',
      subscribe: 'type = "track"',
      mapping: {
        data: { '@path': '$.' },
        enable_batching: batch > 0,
        batch_size: batch || 1
      }
    }
  }
  let next = 0
  let delivered = 0
  let failed = 0
  const started = process.hrtime.bigint()
  const cpuStart = process.cpuUsage()
  async function worker() {
    while (next < events) {
      if (batch > 0) {
        const chunk = []
        while (chunk.length < batch && next < events) chunk.push(sampleEvent(next++))
        const results = await destination.onBatch(chunk, settings)
        if (check(results)) delivered += chunk.length
        else failed += chunk.length
      } else {
        const event = sampleEvent(next++)
        try {
          const results = await destination.onEvent(event, settings)
          if (check(results)) delivered += 1
          else failed += 1
        } catch (err) {
          failed += 1
        }
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const cpu = process.cpuUsage(cpuStart)
  console.log(
    JSON.stringify({
      events,
      delivered,
      failed,
      seconds,
      cpu_seconds: (cpu.user + cpu.system) / 1e6,
      // VmHWM, as read for Sluice's worker (getrusage's maxRSS is the same high-water mark)
      max_rss_kb: Number(fs.readFileSync('/proc/self/status', 'utf8').match(/VmHWM:\s+(\d+)/)[1]),
      max_rss_kb_getrusage: process.resourceUsage().maxRSS
    })
  )
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
