/** The local Cloudflare API emulator of the sandbox: start it in-process with `startCloudflareEmulator`. */
export { startCloudflareEmulator, newEmulatorToken, API_PREFIX } from './server.ts';
export type { CloudflareEmulator, CloudflareEmulatorOptions, EmulatorTokenSpec, RequestLogEntry, FaultSpec, ActiveFault, AnalyticsLimits, DatasetLimits } from './server.ts';
export { DEFAULT_ANALYTICS_LIMITS } from './analytics/analytics-limits.ts';
export type { EmulatorState, EmulatedZone, EmulatedRecord, EmulatedTunnel, ZonePlan } from './emulator-state.ts';
export { createFixtureState, FIXTURE_ACCOUNT_ID, FIXTURE_TUNNEL_ID, FIXTURE_TUNNEL_TARGET, FIXTURE_ZONES, FIXTURE_PREEXISTING_TUNNEL_HOSTNAMES } from './fixture.ts';
