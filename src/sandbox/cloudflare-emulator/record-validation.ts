import { isIP } from 'node:net';
import { ApiFailure, apiFailures } from './api-envelope.ts';
import { isStringList } from '../../json-guards.ts';
import { commentLimitFor, isPaidPlan, RECORD_TYPES, type EmulatedRecord, type EmulatedZone, type RecordType } from './emulator-state.ts';

/**
 * What the DNS records endpoint checks before it stores a record, as Cloudflare does:
 * the record type, the name (inside the zone; `@` and bare labels are relative to it), the content
 * for the type, proxying, TTL, the comment length and tags for the zone's plan, and name conflicts
 * (81053: a CNAME cannot share its name; 81058: an identical record exists).
 */

const PROXIABLE: readonly RecordType[] = ['A', 'AAAA', 'CNAME'];
const LABEL = /^(\*|[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)$/;
const TAG = /^[^:\s]{1,32}:[^\n]{0,100}$/;

/** What a create or update may set: the record without its identity and timestamps. */
export type RecordInput = Pick<EmulatedRecord, 'name' | 'type' | 'content' | 'proxied' | 'ttl' | 'comment' | 'tags'>;

function isHostname(value: string): boolean {
  const name = value.toLowerCase().replace(/\.$/, '');
  if (name.length === 0 || name.length > 253 || isIP(name) !== 0) return false;
  const labels = name.split('.');
  return labels.length >= 2 && labels.every((label, i) => LABEL.test(label) && (label !== '*' || i === 0));
}

/** The record's fully qualified name, or 9005 when it falls outside the zone. */
export function qualifyName(raw: unknown, zone: EmulatedZone): string {
  if (typeof raw !== 'string' || raw.trim() === '') throw apiFailures.invalidName('DNS record name is required.');
  const name = raw.trim().toLowerCase().replace(/\.$/, '');
  const fqdn = name === '@' ? zone.name : name.includes('.') ? name : `${name}.${zone.name}`;
  if (fqdn !== zone.name && !fqdn.endsWith(`.${zone.name}`)) {
    throw apiFailures.invalidName(`DNS record name ${fqdn} is not inside the zone ${zone.name}.`);
  }
  if (!isHostname(fqdn)) throw apiFailures.invalidName(`DNS record name ${fqdn} is invalid.`);
  return fqdn;
}

function checkContent(type: RecordType, content: unknown): string {
  if (typeof content !== 'string' || content === '') {
    throw type === 'CNAME' ? apiFailures.invalidCnameContent() : apiFailures.validation(`Content for ${type} record is required.`, 9008);
  }
  if (type === 'CNAME' && !isHostname(content)) throw apiFailures.invalidCnameContent();
  if (type === 'A' && isIP(content) !== 4) throw apiFailures.invalidIpContent('A');
  if (type === 'AAAA' && isIP(content) !== 6) throw apiFailures.invalidIpContent('AAAA');
  return type === 'CNAME' ? content.toLowerCase().replace(/\.$/, '') : content;
}

function isRecordType(value: string): value is RecordType {
  return RECORD_TYPES.some((type) => type === value);
}

function checkType(raw: unknown): RecordType {
  const type = typeof raw === 'string' ? raw.toUpperCase() : undefined;
  if (type === undefined || !isRecordType(type)) throw apiFailures.invalidRecordType(String(raw ?? ''));
  return type;
}

function checkProxied(raw: unknown, type: RecordType): boolean {
  if (raw !== undefined && typeof raw !== 'boolean') throw apiFailures.validation('proxied must be true or false.', 9003);
  const proxied = raw === true;
  if (proxied && !PROXIABLE.includes(type)) throw new ApiFailure(400, [{ code: 9004, message: 'This record type cannot be proxied.' }]);
  return proxied;
}

function checkTtl(raw: unknown, proxied: boolean): number {
  const ttl = raw ?? 1;
  if (typeof ttl !== 'number' || !(ttl === 1 || (Number.isInteger(ttl) && ttl >= 60 && ttl <= 86400))) {
    throw new ApiFailure(400, [{ code: 9021, message: 'Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic.' }]);
  }
  return proxied ? 1 : ttl;
}

function checkComment(raw: unknown, zone: EmulatedZone): string | null {
  if (raw !== undefined && raw !== null && typeof raw !== 'string') throw apiFailures.validation('comment must be a string.', 9312);
  const comment = typeof raw === 'string' && raw !== '' ? raw : null;
  if (comment !== null && comment.length > commentLimitFor(zone.plan)) throw apiFailures.commentTooLong(commentLimitFor(zone.plan));
  return comment;
}

function checkTags(raw: unknown, zone: EmulatedZone): string[] {
  const tags = raw ?? [];
  if (!isStringList(tags) || !tags.every((tag) => TAG.test(tag))) {
    throw apiFailures.validation('tags must be a list of strings of the form <name>:<value>.', 9315);
  }
  if (tags.length > 0 && !isPaidPlan(zone.plan)) throw apiFailures.tagsNotAllowed(tags.length);
  return tags;
}

/** Validates a full record body (POST, PUT) or an existing record merged with a patch (PATCH). */
export function validateRecordInput(body: Record<string, unknown>, zone: EmulatedZone): RecordInput {
  const type = checkType(body.type);
  const name = qualifyName(body.name, zone);
  const content = checkContent(type, body.content);
  if (type === 'CNAME' && content === name) throw apiFailures.invalidCnameContent();
  const proxied = checkProxied(body.proxied, type);
  const ttl = checkTtl(body.ttl, proxied);
  const comment = checkComment(body.comment, zone);
  const tags = checkTags(body.tags, zone);
  return { name, type, content, proxied, ttl, comment, tags };
}

/** 81058 for an identical record, 81053 when a CNAME would share its name with any other record. */
export function checkNameConflicts(input: RecordInput, zoneRecords: EmulatedRecord[], ignoreId?: string): void {
  const sameName = zoneRecords.filter((r) => r.id !== ignoreId && r.name === input.name);
  if (sameName.some((r) => r.type === input.type && r.content.toLowerCase() === input.content.toLowerCase())) {
    throw apiFailures.identicalRecord();
  }
  if (input.type === 'CNAME' ? sameName.length > 0 : sameName.some((r) => r.type === 'CNAME')) {
    throw apiFailures.nameConflict();
  }
}
