/**
 * The stand-in cloudflared as its own program:
 *   node dist/standin-cloudflared.js tunnel --config F --metrics ADDR run ID
 *   node dist/standin-cloudflared.js standin-edge --listen 127.0.0.1:PORT
 * Built as its own entry point (scripts/build.mjs), so it loads none of the manager.
 * The CLI exposes the same thing as `tunnel-manager sandbox-cloudflared …` through run.ts.
 */
import { runStandinCloudflared } from './run.ts';

const code = await runStandinCloudflared(process.argv.slice(2));
process.exit(code);
