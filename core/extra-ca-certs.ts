/**
 * NODE_EXTRA_CA_CERTS, read at the first TLS connection instead of at every start.
 *
 * Node 20 reads the file NODE_EXTRA_CA_CERTS names, and parses its own ~140 bundled roots with it,
 * in C++ before any JavaScript runs: about 100 ms on each start on a machine whose variable names
 * the system bundle (144 certificates), for every `agent` command, whether it opens a TLS
 * connection or not (nodejs/node#40524; later releases load it lazily, #59856). So bin/agent.js starts
 * under /bin/sh: when the variable is set, it moves it to NGINX_AGENT_EXTRA_CA_CERTS and execs Node
 * without it. `trustDeferredExtraCaCerts` then gives every TLS context this thread creates without a
 * `ca` of its own those certificates too, which is what Node does with the variable: fetch, https,
 * tls.connect and the NATS client alike. An explicit `ca` replaces the defaults, extra included, as
 * in Node. The file is read when the first such context is made, and a context for connections that
 * set nothing of their own is made once and shared.
 */
import type { SecureContext, SecureContextOptions } from 'node:tls';

/** What of node:tls the hook uses and replaces. */
export interface TlsModule {
  createSecureContext(options?: SecureContextOptions): SecureContext;
  readonly rootCertificates: readonly string[];
}

/**
 * Makes TLS contexts made in this thread (`loadTls()`'s createSecureContext) trust the certificates in the file NGINX_AGENT_EXTRA_CA_CERTS
 * names, unless NODE_EXTRA_CA_CERTS is set too (then Node has loaded that file itself). Returns the
 * file, or undefined when there is nothing to do. A file that cannot be read, or holds no
 * certificate, is reported through `warn` once (as Node does) and TLS goes on with the defaults.
 *
 * Self-contained: it uses only its parameters, so a thread started from source text (the Wasm
 * plugins' HTTP helper, core/wasm/sync-http.ts) can run it from `String(trustDeferredExtraCaCerts)`.
 */
export function trustDeferredExtraCaCerts(
  loadTls: () => TlsModule,
  env: NodeJS.ProcessEnv,
  readTextFile: (path: string) => string,
  warn: (message: string) => void,
): string | undefined {
  const file = env.NGINX_AGENT_EXTRA_CA_CERTS;
  if (!file || env.NODE_EXTRA_CA_CERTS) return undefined;
  const tls = loadTls();
  // Options that shape a context; a connection setting none of them gets the shared one.
  const shaping = [
    'ca',
    'cert',
    'key',
    'pfx',
    'passphrase',
    'ciphers',
    'ecdhCurve',
    'dhparam',
    'secureProtocol',
    'minVersion',
    'maxVersion',
    'secureOptions',
    'honorCipherOrder',
    'sessionIdContext',
    'sigalgs',
    'privateKeyEngine',
    'privateKeyIdentifier',
    'clientCertEngine',
    'crl',
    'ticketKeys',
    'sessionTimeout',
    'allowPartialTrustChain',
  ];
  const createDefault = tls.createSecureContext;
  let extra: string[] | undefined;
  let shared: SecureContext | undefined;

  /** The file's certificates that are not among Node's bundled roots already (PEM texts). */
  const extraCertificates = (): string[] => {
    if (extra) return extra;
    extra = [];
    let text: string;
    try {
      text = readTextFile(file);
    } catch (err) {
      warn(`Ignoring the extra CA certificates in ${file} (NODE_EXTRA_CA_CERTS): ${(err as Error).message}`);
      return extra;
    }
    const blocks = text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    if (blocks.length === 0) warn(`Ignoring ${file} (NODE_EXTRA_CA_CERTS): it holds no PEM certificate`);
    const bundled = new Set(tls.rootCertificates.map((pem) => pem.replace(/\s+/g, '')));
    for (const pem of blocks) if (!bundled.has(pem.replace(/\s+/g, ''))) extra.push(pem);
    return extra;
  };

  /** A context as Node would make it from `options`, trusting the extra certificates as well. */
  const withExtra = (options: SecureContextOptions | undefined): SecureContext => {
    const certificates = extraCertificates();
    if (certificates.length === 0) return createDefault(options);
    const context = createDefault(options);
    // The native context adds PEM text to its own copy of the roots: ~13 ms for 22 certificates,
    // against ~100 ms to parse them with the ~140 roots again through `ca`, the public way, which
    // stays as the fallback should a Node.js release drop addCACert.
    const native = (context as unknown as { context?: { addCACert?: (pem: string) => void } }).context;
    if (typeof native?.addCACert !== 'function')
      return createDefault({ ...options, ca: [...tls.rootCertificates, ...certificates] });
    for (const pem of certificates) native.addCACert(pem);
    return context;
  };

  tls.createSecureContext = (options?: SecureContextOptions): SecureContext => {
    if (options?.ca !== undefined) return createDefault(options);
    const own = options && shaping.some((key) => (options as Record<string, unknown>)[key] !== undefined);
    if (own) return withExtra(options);
    shared ??= withExtra(undefined);
    return shared;
  };
  return file;
}
