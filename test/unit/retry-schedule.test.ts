// The retry schedule of the outbound queue (RFC 5321 §4.5.4.1): the wait before each further
// attempt follows queue.retry_schedule, its last wait repeating, and no attempt is planned after
// the message's expiry: the last one falls on it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema, parseRetrySchedule } from '../../src/config/schema.js';
import { nextAttemptAt } from '../../src/queue/outbound-queue.js';

const MINUTE = 60_000;
const now = new Date('2026-12-01T09:00:00Z');
const farAway = new Date('2026-12-06T09:00:00Z');

/** Minutes from `now` to the attempt planned after `attemptsMade` attempts. */
function waitAfter(schedule: number[], attemptsMade: number, expiresAt = farAway): number {
  return (nextAttemptAt(schedule, attemptsMade, now, expiresAt).getTime() - now.getTime()) / MINUTE;
}

test('the default schedule is 5m, 10m, 20m, 40m, then hourly', () => {
  const configured = configSchema.parse({}).queue.retry_schedule;
  assert.equal(configured, '5m,10m,20m,40m,1h');
  const schedule = parseRetrySchedule(configured);
  // The wait before attempt N is the one after attempt N - 1.
  const waits = [1, 2, 3, 4, 5, 6, 7, 20].map((made) => waitAfter(schedule, made));
  assert.deepEqual(waits, [5, 10, 20, 40, 60, 60, 60, 60]);
});

test('a configured schedule is followed in order and its last wait repeats', () => {
  const schedule = parseRetrySchedule('30s, 2m ,1h,3h');
  assert.deepEqual([1, 2, 3, 4, 5, 9].map((made) => waitAfter(schedule, made)), [0.5, 2, 60, 180, 180, 180]);
  const single = parseRetrySchedule('15m');
  assert.deepEqual([1, 2, 50].map((made) => waitAfter(single, made)), [15, 15, 15]);
});

test('the final attempt is clamped to the message\'s expiry', () => {
  const schedule = parseRetrySchedule('5m,10m,20m,40m,1h');
  const expiresAt = new Date(now.getTime() + 25 * MINUTE);
  // Before the end of the lifetime: as scheduled.
  assert.equal(waitAfter(schedule, 1, expiresAt), 5);
  assert.equal(waitAfter(schedule, 2, expiresAt), 10);
  // 20 minutes would pass the expiry (25 min away): the attempt falls on the expiry itself.
  assert.equal(nextAttemptAt(schedule, 3, new Date(now.getTime() + 15 * MINUTE), expiresAt).getTime(), expiresAt.getTime());
  assert.equal(waitAfter(schedule, 5, expiresAt), 25);
  // Exactly on the expiry is not clamped further; an expiry already past is never exceeded.
  assert.equal(waitAfter(schedule, 1, new Date(now.getTime() + 5 * MINUTE)), 5);
  assert.equal(nextAttemptAt(schedule, 1, now, new Date(now.getTime() - MINUTE)).getTime(), now.getTime() - MINUTE);
});
