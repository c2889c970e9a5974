import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { CloudflaredConfig, IngressRule, OriginRequest } from '../../ingress-model.ts';
import { validateCloudflaredConfig } from '../../cloudflared/ingress/ingress-validation.ts';
import { isJsonObject } from '../../json-guards.ts';

/**
 * Reads config.yml the way cloudflared does at start-up and checks it with the manager's own rules
 * (src/cloudflared/ingress/ingress-validation.ts), so the stand-in refuses exactly what the manager refuses.
 * Failures come back as cloudflared-like error lines, each naming the rule.
 */
export type ConfigReadResult = { ok: true; path: string; config: CloudflaredConfig } | { ok: false; errors: string[] };

/** Where cloudflared looks when `--config` is not given. */
function defaultConfigPaths(): string[] {
  const dirs = [join(homedir(), '.cloudflared'), join(homedir(), '.cloudflare-warp'), join(homedir(), 'cloudflare-warp'), '/etc/cloudflared', '/usr/local/etc/cloudflared'];
  return dirs.flatMap((dir) => [join(dir, 'config.yml'), join(dir, 'config.yaml')]);
}

/**
 * The YAML's `ingress` list handed on as it came: validateCloudflaredConfig checks every rule field by field (a rule
 * that is not a mapping, a service that is not a string), with cloudflared's messages, so nothing is dropped here.
 */
function isIngressList(value: unknown): value is IngressRule[] {
  return Array.isArray(value);
}

/** The YAML's `originRequest` handed on as it came: the validator refuses one that is not a mapping, naming it. */
function isOriginRequestCandidate(value: unknown): value is OriginRequest {
  return value !== undefined;
}

function toConfig(raw: Record<string, unknown>): CloudflaredConfig {
  const { tunnel, 'credentials-file': credentialsFile, originRequest, ingress, ...extra } = raw;
  const config: CloudflaredConfig = { ingress: isIngressList(ingress) ? ingress : [], extra };
  if (typeof tunnel === 'string') config.tunnel = tunnel;
  if (typeof credentialsFile === 'string') config['credentials-file'] = credentialsFile;
  if (isOriginRequestCandidate(originRequest)) config.originRequest = originRequest;
  return config;
}

function readErrorLine(path: string, error: unknown): string {
  const missing = error instanceof Error && 'code' in error && error.code === 'ENOENT';
  const reason = missing ? 'no such file or directory' : error instanceof Error ? error.message : String(error);
  return `Cannot read config file error="open ${path}: ${reason}"`;
}

export function readStandinConfig(configPath: string | null): ConfigReadResult {
  const path = configPath ?? defaultConfigPaths().find((candidate) => existsSync(candidate)) ?? null;
  if (path === null) {
    return {
      ok: false,
      errors: [`Cannot determine default configuration path. No file [config.yml config.yaml] in [${defaultConfigPaths().filter((p) => p.endsWith('config.yml')).map((p) => p.replace(/\/config\.yml$/, '')).join(' ')}]`],
    };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    return { ok: false, errors: [readErrorLine(path, error)] };
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (error) {
    return { ok: false, errors: [`Error parsing YAML in config file at ${path} error="${(error instanceof Error ? error.message : String(error)).split('\n')[0]}"`] };
  }
  if (raw !== null && raw !== undefined && !isJsonObject(raw)) {
    return { ok: false, errors: [`Error parsing YAML in config file at ${path} error="the top level must be a mapping of keys"`] };
  }
  const config = toConfig(isJsonObject(raw) ? raw : {});
  const issues = validateCloudflaredConfig(config);
  if (issues.length > 0) {
    return {
      ok: false,
      errors: issues.map((issue) => `Couldn't start tunnel error="${issue.message}" fix="${issue.fix}"`),
    };
  }
  return { ok: true, path, config };
}
