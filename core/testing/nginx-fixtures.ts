/**
 * Bus messages about nginx for tests and benchmarks that do not run discovery or nginx-config: an
 * instance as discovery announces it, and a config change as nginx-config publishes it. Each caller
 * names the fields its test is about; the rest are the plain defaults below.
 */
import { emptyConfigAnalysis } from '../nginx/config/analyse.js';
import type { ConfigAnalysis, NginxConfigChanged, NginxInstance } from '../nginx/types.js';

/** An nginx instance: `id`, `prefix` and `confPath` given; no pid, no workers, no modules, healthy. */
export function instanceFixture(
  fields: Pick<NginxInstance, 'id' | 'prefix' | 'confPath'> & Partial<NginxInstance>,
): NginxInstance {
  return {
    pid: 0,
    binary: '/usr/sbin/nginx',
    version: '',
    plus: false,
    configureArgs: [],
    modules: [],
    workers: [],
    health: 'HEALTHY',
    ...fields,
  };
}

/**
 * An nginx.config.changed message: `instanceId`, `confPath` and `prefix` given; version v1, a parsed
 * payload without errors, and an analysis that finds nothing but what `fields.analysis` lists.
 */
export function configChangedFixture(
  fields: Pick<NginxConfigChanged, 'instanceId' | 'confPath' | 'prefix'> &
    Partial<Omit<NginxConfigChanged, 'analysis'>> & { analysis?: Partial<ConfigAnalysis> },
): NginxConfigChanged {
  return {
    version: 'v1',
    files: [],
    payload: { status: 'ok', errors: [], config: [] },
    added: [],
    removed: [],
    changed: [],
    ...fields,
    analysis: { ...emptyConfigAnalysis(), ...fields.analysis },
  };
}
