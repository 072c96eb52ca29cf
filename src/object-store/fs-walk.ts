// Walks a directory tree of objects in S3 key order (UTF-8 bytes of the whole
// key), pruning subtrees outside the prefix or before startAfter.
//
// Sorting each directory's names is not enough on its own: 'a-c' sorts before
// 'a/b' in S3 ('-' is 0x2d, '/' is 0x2f) but after the directory 'a'. Comparing
// a directory as 'name/' gives the global order, because every key below it
// starts with 'name/' and a file name never contains '/'.

import type { Dirent } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { compareKeys } from './keys.js';

interface Entry {
  /** Relative key (a file) or key prefix ending in '/' (a directory). */
  rel: string;
  isDir: boolean;
}

/** Could a key below `dirPrefix` (ending in '/') start with `prefix`? */
function dirMatchesPrefix(dirPrefix: string, prefix: string): boolean {
  return dirPrefix.startsWith(prefix) || prefix.startsWith(dirPrefix);
}

/** Is every key below `dirPrefix` at or before `startAfter`? */
function dirBeforeStart(dirPrefix: string, startAfter: string | undefined): boolean {
  return startAfter !== undefined && !startAfter.startsWith(dirPrefix) && compareKeys(dirPrefix, startAfter) < 0;
}

/** Keys (relative to `root`) of every file below it, in key order. Missing root: nothing. */
export async function* walkKeys(root: string, prefix: string, startAfter: string | undefined): AsyncGenerator<string> {
  yield* walkDir(root, '', prefix, startAfter);
}

async function* walkDir(root: string, relDir: string, prefix: string, startAfter: string | undefined): AsyncGenerator<string> {
  let names: Dirent[];
  try {
    names = await readdir(join(root, relDir), { withFileTypes: true });
  } catch (e) {
    // A directory removed by a concurrent delete (or never created) holds no keys.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  const entries: Entry[] = names.map((d) => ({ rel: relDir + d.name + (d.isDirectory() ? '/' : ''), isDir: d.isDirectory() }));
  entries.sort((a, b) => compareKeys(a.rel, b.rel));
  for (const e of entries) {
    if (e.isDir) {
      if (!dirMatchesPrefix(e.rel, prefix) || dirBeforeStart(e.rel, startAfter)) continue;
      yield* walkDir(root, e.rel, prefix, startAfter);
    } else {
      if (!e.rel.startsWith(prefix)) continue;
      if (startAfter !== undefined && compareKeys(e.rel, startAfter) <= 0) continue;
      yield e.rel;
    }
  }
}
