#!/usr/bin/env node
// Copies the dashboard's page, script and style (core/views/dashboard/) into dist/ beside the compiled
// views, so an install that ships only dist/ (the Docker image, scripts/install.sh) serves them too.
import { cpSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
cpSync(join(root, 'core', 'views', 'dashboard'), join(root, 'dist', 'core', 'views', 'dashboard'), { recursive: true });
