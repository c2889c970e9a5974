import type { EmulatedZone, EmulatorState } from '../emulator-state.ts';
import { combine, paginate, sortBy, ZONE_PAGE_LIMITS, type Predicate } from '../list-query.ts';
import { zoneFromPath, type RouteHandler } from './route-context.ts';

/** `GET /zones` (filters `name`, `status`, `account.id`, `account.name`, `match`; ordering; pagination) and `GET /zones/:zone`. */

const PLANS: Record<EmulatedZone['plan'], { id: string; name: string; price: number }> = {
  free: { id: '0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee', name: 'Free Website', price: 0 },
  pro: { id: 'a577b510288e82b26486fc6e6be8fc53', name: 'Pro Website', price: 20 },
  business: { id: 'bf7b2f4c2a8e4c1b9d0e3f5a6b7c8d9e', name: 'Business Website', price: 200 },
  enterprise: { id: 'e1a2b3c4d5e6f708192a3b4c5d6e7f80', name: 'Enterprise Website', price: 0 },
};

export function zoneShape(zone: EmulatedZone, state: EmulatorState): Record<string, unknown> {
  const account = state.accounts.find((a) => a.id === zone.accountId);
  const plan = PLANS[zone.plan];
  return {
    id: zone.id,
    name: zone.name,
    status: zone.status,
    paused: false,
    type: 'full',
    development_mode: 0,
    name_servers: ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com'],
    original_name_servers: null,
    original_registrar: null,
    original_dnshost: null,
    modified_on: zone.createdOn,
    created_on: zone.createdOn,
    activated_on: zone.status === 'active' ? zone.createdOn : null,
    meta: { step: 2, custom_certificate_quota: 0, page_rule_quota: 3, phishing_detected: false },
    owner: { id: null, type: 'user', email: null },
    account: { id: zone.accountId, name: account?.name ?? '' },
    tenant: { id: null, name: null },
    tenant_unit: { id: null },
    permissions: ['#zone:read', '#dns_records:edit', '#dns_records:read'],
    plan: {
      id: plan.id,
      name: plan.name,
      price: plan.price,
      currency: 'USD',
      frequency: zone.plan === 'free' ? '' : 'monthly',
      is_subscribed: zone.plan !== 'free',
      can_subscribe: false,
      legacy_id: zone.plan,
      legacy_discount: false,
      externally_managed: false,
    },
  };
}

/** `name` accepts a plain name or an operator prefix: `contains:`, `starts_with:`, `ends_with:`, `equal:`, `not_equal:`. */
function nameFilter(raw: string): Predicate<EmulatedZone> {
  const match = /^(contains|starts_with|ends_with|equal|not_equal):(.*)$/.exec(raw);
  const [operator, value] = match === null ? ['equal', raw.toLowerCase()] : [match[1], (match[2] ?? '').toLowerCase()];
  switch (operator) {
    case 'contains':
      return (zone) => zone.name.includes(value);
    case 'starts_with':
      return (zone) => zone.name.startsWith(value);
    case 'ends_with':
      return (zone) => zone.name.endsWith(value);
    case 'not_equal':
      return (zone) => zone.name !== value;
    default:
      return (zone) => zone.name === value;
  }
}

export const listZones: RouteHandler = {
  scope: 'zone:read',
  handle({ query, store }) {
    const state = store.state;
    const predicates: Predicate<EmulatedZone>[] = [];
    const name = query.get('name');
    if (name !== null) predicates.push(nameFilter(name));
    const status = query.get('status');
    if (status !== null) predicates.push((zone) => zone.status === status);
    const accountId = query.get('account.id');
    if (accountId !== null) predicates.push((zone) => zone.accountId === accountId);
    const accountName = query.get('account.name');
    if (accountName !== null) {
      predicates.push((zone) => state.accounts.find((a) => a.id === zone.accountId)?.name.toLowerCase() === accountName.toLowerCase());
    }
    const matching = state.zones.filter(combine(predicates, query.get('match')));
    const sorted = sortBy(
      matching,
      query,
      {
        name: (z) => z.name,
        status: (z) => z.status,
        'account.id': (z) => z.accountId,
        'account.name': (z) => state.accounts.find((a) => a.id === z.accountId)?.name ?? '',
      },
      'name',
    );
    const { page, resultInfo } = paginate(sorted, query, ZONE_PAGE_LIMITS);
    return { result: page.map((zone) => zoneShape(zone, state)), resultInfo };
  },
};

export const getZone: RouteHandler = {
  scope: 'zone:read',
  handle(context) {
    return { result: zoneShape(zoneFromPath(context), context.store.state) };
  },
};
