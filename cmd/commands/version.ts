/** `agent version`: prints the package version (nothing else loaded). */
import type { Command } from 'commander';
import { VERSION } from '../../core/version.js';

export function register(program: Command): void {
  program
    .command('version')
    .description('print the agent version')
    .action(() => {
      process.stdout.write(`${VERSION}\n`);
    });
}
