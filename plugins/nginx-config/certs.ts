/**
 * Certificate expiry from the config analysis: the `nginx.ssl.certificate.expiry` gauge (seconds
 * until notAfter) and `nginx.ssl.certificate.expiring` events for certificates inside the window.
 */
import { gauge, type Metric } from '../../core/metrics/model.js';
import type { CertificateExpiring, CertificateInfo } from '../../core/nginx/types.js';

/** The gauge for every certificate with a known notAfter (one point per file). */
export function certificateMetrics(certs: readonly CertificateInfo[], now: number): Metric[] {
  const seen = new Set<string>();
  const points = [];
  for (const c of certs) {
    if (c.notAfter === undefined || seen.has(c.path)) continue;
    seen.add(c.path);
    points.push({
      attributes: { path: c.path, subject: c.subject ?? '' },
      value: Math.round((c.notAfter - now) / 1000),
    });
  }
  return [
    gauge(
      {
        name: 'nginx.ssl.certificate.expiry',
        unit: 's',
        description: 'Seconds until the certificate expires (negative once expired), per certificate file nginx loads.',
      },
      points,
    ),
  ];
}

/**
 * Certificates expiring within `windowMs` that were not announced yet. `announced` holds
 * `path|notAfter` keys and is updated, so a renewed certificate (new notAfter) is announced again.
 */
export function expiringCertificates(
  instanceId: string,
  certs: readonly CertificateInfo[],
  now: number,
  windowMs: number,
  announced: Set<string>,
): CertificateExpiring[] {
  const out: CertificateExpiring[] = [];
  for (const c of certs) {
    if (c.notAfter === undefined || c.notAfter - now > windowMs) continue;
    const key = `${c.path}|${c.notAfter}`;
    if (announced.has(key)) continue;
    announced.add(key);
    out.push({
      instanceId,
      path: c.path,
      ...(c.subject ? { subject: c.subject } : {}),
      notAfter: c.notAfter,
      secondsLeft: Math.round((c.notAfter - now) / 1000),
    });
  }
  return out;
}
