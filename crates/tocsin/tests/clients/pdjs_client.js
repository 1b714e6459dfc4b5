// Drive Tocsin with PagerDuty's own JavaScript client (@pagerduty/pdjs 2.x),
// which always speaks https to `server`. Usage: node pdjs_client.js HOST:PORT PD_KEY
// (NODE_EXTRA_CA_CERTS names the test's self-signed certificate). Prints JSON.
const { event } = require('@pagerduty/pdjs');

const [server, routingKey] = process.argv.slice(2);

async function send(action, extra) {
  const res = await event({
    server,
    data: { routing_key: routingKey, event_action: action, ...extra },
  });
  if (res.response.status !== 202) {
    throw new Error(`${action}: HTTP ${res.response.status} ${JSON.stringify(res.data)}`);
  }
  return res.data;
}

(async () => {
  const triggered = await send('trigger', {
    payload: { summary: 'pdjs: certificate expires', source: 'web-1', severity: 'warning' },
  });
  const key = triggered.dedup_key;
  await send('acknowledge', { dedup_key: key });
  await send('resolve', { dedup_key: key });
  console.log(JSON.stringify({ pdjs: { dedup_key: key, message: triggered.message } }));
})().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
