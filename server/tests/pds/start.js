// Starts a real Bluesky PDS (@atproto/pds) for Herald's tests, with an in-memory PLC
// directory (@did-plc/server) beside it, both bound to 127.0.0.1 on free ports, SQLite and
// blobs in the directory given as the first argument. Handles end in `.test`
// (PDS_HOSTNAME=localhost), invite codes are off, rate limits are off (the PDS default).
// Prints one line `HERALD_TEST_PDS_URL=http://127.0.0.1:<port>` once both answer, then runs
// until SIGTERM/SIGINT. Started and stopped by scripts/lib/pds.sh.
'use strict'

const crypto = require('node:crypto')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const path = require('node:path')

// Both servers call `listen(port)`, which binds every interface; keep them on loopback.
const listen = http.Server.prototype.listen
http.Server.prototype.listen = function (...args) {
  if (typeof args[0] === 'number' && typeof args[1] !== 'string') {
    args.splice(1, 0, '127.0.0.1')
  }
  return listen.apply(this, args)
}

const { PlcServer, Database: PlcDatabase } = require('@did-plc/server')
const pds = require('@atproto/pds')

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function main() {
  const dir = process.argv[2]
  if (!dir) throw new Error('usage: node start.js <data directory>')
  fs.mkdirSync(path.join(dir, 'blobs', 'tmp'), { recursive: true })

  const plcPort = await freePort()
  const plc = PlcServer.create({ db: PlcDatabase.mock(), port: plcPort })
  await plc.start()

  const port = await freePort()
  Object.assign(process.env, {
    PDS_PORT: String(port),
    PDS_HOSTNAME: 'localhost',
    PDS_DATA_DIRECTORY: dir,
    PDS_BLOBSTORE_DISK_LOCATION: path.join(dir, 'blobs'),
    PDS_BLOBSTORE_DISK_TMP_LOCATION: path.join(dir, 'blobs', 'tmp'),
    PDS_DID_PLC_URL: `http://127.0.0.1:${plcPort}`,
    PDS_INVITE_REQUIRED: 'false',
    PDS_DEV_MODE: 'true',
    PDS_JWT_SECRET: crypto.randomBytes(16).toString('hex'),
    PDS_ADMIN_PASSWORD: crypto.randomBytes(16).toString('hex'),
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: crypto.randomBytes(32).toString('hex'),
  })
  const env = pds.readEnv()
  const server = await pds.PDS.create(pds.envToCfg(env), pds.envToSecrets(env))
  await server.start()

  const url = `http://127.0.0.1:${port}`
  const health = await fetch(`${url}/xrpc/_health`)
  if (!health.ok) throw new Error(`PDS health check: HTTP ${health.status}`)
  process.stdout.write(`HERALD_TEST_PDS_URL=${url}\n`)

  let stopping = false
  const stop = async () => {
    if (stopping) return
    stopping = true
    await server.destroy()
    await plc.destroy()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

main().catch((error) => {
  process.stderr.write(`test PDS failed to start: ${error.stack || error}\n`)
  process.exit(1)
})
