/**
 * Runs `<binary> -V` once per binary file and remembers the answer. The cache key is the path plus
 * the file's inode and mtime, so a package upgrade that replaces the binary is read again, while
 * every poll of an unchanged binary costs one stat.
 */
import { execFile } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { modulesFromDir, NGINX_DEFAULT_PREFIX, parseNginxV, type BinaryInfo } from './parse.js';

/** A binary whose -V failed (timeout under load, permissions) is tried again after this long, not on every poll. */
const RETRY_FAILED_MS = 60_000;

export interface BinaryInfoResult extends BinaryInfo {
  /** Every module: static, dynamic, and `.so` files in the modules directory. */
  modules: string[];
  /** Why -V could not be read (the instance is still reported, with an empty version). */
  error?: string;
}

export interface BinaryInfoSettings {
  timeoutMs: number;
  /** Runs `file -V` and resolves with what it wrote (nginx writes -V to stderr). Injected by tests. */
  run?: (file: string, args: string[], timeoutMs: number) => Promise<string>;
}

function runFile(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, maxBuffer: 1 << 20, env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' } },
      (err, stdout, stderr) => {
        if (err)
          reject(
            new Error(
              `${file} ${args.join(' ')}: ${err.message.split('\n')[0]}${stderr ? `: ${stderr.trim().slice(0, 200)}` : ''}`,
            ),
          );
        else resolve(`${stderr}${stdout}`);
      },
    );
  });
}

export class BinaryInfoCache {
  readonly #cache = new Map<string, { p: Promise<BinaryInfoResult>; at: number }>();
  readonly #run: NonNullable<BinaryInfoSettings['run']>;
  /** How many times -V ran (status and tests). */
  runs = 0;

  constructor(readonly settings: BinaryInfoSettings) {
    this.#run = settings.run ?? runFile;
  }

  /**
   * Info for `binary`. When that path is not visible from here (nginx in another container sharing
   * only the PID namespace), or `replaced` says the running file was replaced on disk, `fallbackExe`
   * (`/proc/PID/exe`, which always opens the running file) is run instead.
   */
  async get(binary: string, fallbackExe?: string, opts: { replaced?: boolean } = {}): Promise<BinaryInfoResult> {
    let key = binary;
    let file = binary;
    if (opts.replaced && fallbackExe) {
      // The file at `binary` is not what runs (upgraded on disk): ask the running executable itself.
      const st = await stat(fallbackExe).catch(() => undefined);
      key = `${binary}\0replaced\0${st?.ino ?? fallbackExe}`;
      file = fallbackExe;
    } else
      try {
        const st = await stat(binary);
        key = `${binary}\0${st.ino}\0${st.mtimeMs}`;
      } catch {
        if (fallbackExe) file = fallbackExe;
      }
    const hit = this.#cache.get(key);
    if (hit && !((await hit.p).error && Date.now() - hit.at > RETRY_FAILED_MS)) return hit.p;
    const p = this.#load(file);
    this.#cache.set(key, { p, at: Date.now() });
    return p;
  }

  async #load(file: string): Promise<BinaryInfoResult> {
    this.runs++;
    let info: BinaryInfo;
    try {
      info = parseNginxV(await this.#run(file, ['-V'], this.settings.timeoutMs));
    } catch (err) {
      return {
        version: '',
        plus: false,
        configureArgs: [],
        staticModules: [],
        dynamicModules: [],
        modules: [],
        error: (err as Error).message,
      };
    }
    let fromDir: string[] = [];
    const dir = info.modulesPath ?? join(info.prefix ?? NGINX_DEFAULT_PREFIX, 'modules');
    if (isAbsolute(dir)) {
      try {
        fromDir = modulesFromDir(await readdir(dir));
      } catch {
        /* no modules directory: nothing loadable installed */
      }
    }
    const modules = [...new Set([...info.staticModules, ...info.dynamicModules, ...fromDir])].sort();
    return { ...info, modules };
  }
}
