import { apiFailures } from '../api-envelope.ts';
import type { EmulatedIngressRule, EmulatedTunnel } from '../emulator-state.ts';
import { isJsonObject, isObjectLike } from '../../../json-guards.ts';
import { bodyObject, type RouteContext, type RouteHandler } from './route-context.ts';

/**
 * `GET|PUT /accounts/:account/cfd_tunnel/:tunnel/configurations`: the configuration of a remotely
 * managed tunnel. A PUT replaces it, bumps `version` and makes the tunnel remotely managed.
 * Checked like cloudflared checks a config: at least one rule, the last one a catch-all.
 */

function tunnelFromPath(context: RouteContext): EmulatedTunnel {
  const account = context.store.state.accounts.find((a) => a.id === context.params.account);
  if (account === undefined) throw apiFailures.objectNotFound(context.path);
  const tunnel = context.store.state.tunnels.find((t) => t.accountId === account.id && t.id === context.params.tunnel);
  if (tunnel === undefined) throw apiFailures.tunnelNotFound();
  return tunnel;
}

function configurationShape(tunnel: EmulatedTunnel): Record<string, unknown> {
  return {
    account_id: tunnel.accountId,
    tunnel_id: tunnel.id,
    version: tunnel.version,
    config: tunnel.config,
    source: tunnel.source,
    created_at: tunnel.createdAt,
  };
}

/** The API's originRequest takes its timeouts in seconds (numbers), not cloudflared's duration strings. */
const NUMERIC_ORIGIN_KEYS = ['connectTimeout', 'tlsTimeout', 'tcpKeepAlive', 'keepAliveTimeout'];

function validateOriginRequest(value: unknown, where: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined;
  if (!isJsonObject(value)) throw apiFailures.invalidTunnelConfiguration(`${where} must be an object`);
  for (const key of NUMERIC_ORIGIN_KEYS) {
    const field = value[key];
    if (field !== undefined && typeof field !== 'number') throw apiFailures.invalidTunnelConfiguration(`${where}.${key} must be a number of seconds`);
  }
  return value;
}

/** One rule as the API takes it: an object with a service; its other fields are kept as they came. */
function validateRule(rule: unknown, index: number): EmulatedIngressRule {
  if (!isObjectLike(rule) || typeof rule.service !== 'string') {
    throw apiFailures.invalidTunnelConfiguration(`config.ingress[${index}] needs a service`);
  }
  const originRequest = validateOriginRequest(rule.originRequest, `config.ingress[${index}].originRequest`);
  return { ...rule, service: rule.service, ...(originRequest === undefined ? {} : { originRequest }) };
}

function validateIngress(value: unknown): EmulatedIngressRule[] {
  if (!Array.isArray(value) || value.length === 0) throw apiFailures.invalidTunnelConfiguration('config.ingress must be a non-empty list of rules');
  const rules = value.map(validateRule);
  const last = rules.at(-1);
  if (last === undefined) throw apiFailures.invalidTunnelConfiguration('config.ingress must be a non-empty list of rules');
  if ((last.hostname !== undefined && last.hostname !== '' && last.hostname !== '*') || (last.path !== undefined && last.path !== '')) {
    throw apiFailures.invalidTunnelConfiguration('the last ingress rule must match all URLs (no hostname, or "*", and no path)');
  }
  rules.slice(0, -1).forEach((rule, index) => {
    if (rule.hostname === undefined || rule.hostname === '' || rule.hostname === '*') {
      if (rule.path === undefined || rule.path === '') {
        throw apiFailures.invalidTunnelConfiguration(`config.ingress[${index}] matches all URLs but is not the last rule`);
      }
    }
  });
  return rules;
}

export const getTunnelConfiguration: RouteHandler = {
  scope: 'tunnel:read',
  handle(context) {
    return { result: configurationShape(tunnelFromPath(context)) };
  },
};

export const putTunnelConfiguration: RouteHandler = {
  scope: 'tunnel:edit',
  handle(context) {
    const tunnel = tunnelFromPath(context);
    const body = bodyObject(context);
    const config = body.config;
    if (!isJsonObject(config)) {
      throw apiFailures.invalidTunnelConfiguration('config must be an object with an ingress list');
    }
    const { ingress, ...rest } = config;
    validateOriginRequest(rest.originRequest, 'config.originRequest');
    tunnel.config = { ...rest, ingress: validateIngress(ingress) };
    tunnel.version += 1;
    tunnel.source = 'cloudflare';
    context.store.changed();
    return { result: configurationShape(tunnel) };
  },
};
