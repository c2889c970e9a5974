import { describe, expect, it } from 'vitest';
import { jsonObject, jsonStringList, jsonStringRecord, jsonValue } from '../../../src/store/json-column.ts';

describe('JSON columns read back with their shape checked', () => {
  it('answers what the store wrote', () => {
    expect(jsonObject('{"a":1,"b":{"c":[true]}}')).toEqual({ a: 1, b: { c: [true] } });
    expect(jsonStringRecord('{"com.docker.compose.project":"web"}')).toEqual({ 'com.docker.compose.project': 'web' });
    expect(jsonStringList('["web","web-1"]')).toEqual(['web', 'web-1']);
    expect(jsonValue('[1,"two",null]')).toEqual([1, 'two', null]);
  });

  it('refuses a value of another shape, saying what the column holds', () => {
    expect(() => jsonObject('[1,2]')).toThrow('A JSON column holds [1,2], not an object.');
    expect(() => jsonObject('null')).toThrow('not an object');
    expect(() => jsonStringRecord('{"a":1}')).toThrow('not an object of strings');
    expect(() => jsonStringList('["a",2]')).toThrow('not a list of strings');
  });
});
