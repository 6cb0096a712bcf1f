/** The agent's version, from package.json (read once at start). */
import { PACKAGE } from './package-root.js';

export const VERSION = PACKAGE.version;
