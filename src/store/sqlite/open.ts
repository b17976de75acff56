// Opens the embedded database with the settings Yubin relies on, and migrates it.

import Database from 'better-sqlite3';
import { migrate } from './schema.js';

export function openDatabase(file: string, options: { fsync: boolean; migrate?: boolean }): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  // FULL: a commit is on disk (WAL fsynced) before it returns, so a 250 after it is a promise.
  db.pragma(`synchronous = ${options.fsync ? 'FULL' : 'OFF'}`);
  db.pragma('busy_timeout = 10000');
  db.pragma('foreign_keys = ON');
  try {
    if (options.migrate !== false) migrate(db);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}
