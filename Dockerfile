# NGINX agent image: multi-stage build on the official Node.js 20 LTS images (Debian bookworm); the
# runtime is only Node's binary with the shared libraries it links, CA certificates and the agent
# (no shell, no package manager, no npm): about 140 MB.
#   docker build -t nginx-agent:0.1.0 .
#   (CI builds it from a local Debian base: --build-arg NODE_IMAGE=..., see scripts/container-e2e.sh)
# Run it next to nginx: see examples/sidecar/ (compose file and Kubernetes pod spec).
#
# Configuration: /etc/nginx-agent/nginx-agent.yaml is the config the image ships (the defaults with
# the API on every interface, JSON logs, and both plugin directories). Mount your own file over it and
# it is obeyed as written; NGINX_AGENT_* variables you set still win over it (flags > env > file).
# Mount points:
#   /etc/nginx-agent/nginx-agent.yaml   the config (above)
#   /var/lib/nginx-agent                the agent's state directory (agent.state_dir), writable by
#                                       uid 10001: give it a volume when the root filesystem is read-only
#   /var/lib/nginx-agent/plugins        Wasm plugins, one folder each (plugin.yaml + .wasm), loaded
#                                       beside the shipped examples in /opt/nginx-agent/wasm-plugins

ARG NODE_IMAGE=node:20-bookworm-slim

# ---- build: TypeScript and the Wasm plugins ----
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: `prepare` builds, and the sources are not here yet.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN npm run build \
 && find dist -name '*.test.js' -delete -o -name '*.test.js.map' -delete \
 && rm -f dist/.tsbuildinfo \
 && mkdir -p /out/wasm-plugins \
 && for d in wasm-plugins/*/; do \
      [ -f "$d/plugin.yaml" ] || continue; \
      n=$(basename "$d"); \
      ls "$d"*.wasm >/dev/null 2>&1 || { echo "wasm-plugins/$n: no .wasm built (the C example needs clang), left out"; continue; }; \
      mkdir -p "/out/wasm-plugins/$n"; \
      cp "$d/plugin.yaml" "$d"*.wasm "/out/wasm-plugins/$n/"; \
    done \
 && mkdir -p /out/etc && node scripts/image-config.mjs config/agent.yaml /out/etc/nginx-agent.yaml

# ---- deps: production dependencies only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /opt/nginx-agent
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- rootfs: Node's binary, the libraries it links, CA certificates, the user; nothing else ----
FROM ${NODE_IMAGE} AS rootfs
RUN set -e; node=$(command -v node); mkdir -p /rootfs/usr/local/bin /rootfs/etc/ssl/certs /rootfs/tmp \
      /rootfs/etc/nginx-agent /rootfs/var/lib/nginx-agent/plugins /rootfs/var/log/nginx-agent; \
    cp "$node" /rootfs/usr/local/bin/node; \
    for lib in $(ldd "$node" | grep -o '/[^ ]*'); do cp --parents -L "$lib" /rootfs/; done; \
    cp -L /etc/ssl/certs/ca-certificates.crt /rootfs/etc/ssl/certs/; \
    printf 'root:x:0:0:root:/root:/sbin/nologin\nnginx-agent:x:10001:10001:NGINX agent:/var/lib/nginx-agent:/sbin/nologin\n' > /rootfs/etc/passwd; \
    printf 'root:x:0:\nnginx-agent:x:10001:\n' > /rootfs/etc/group; \
    chmod 1777 /rootfs/tmp; chown -R 10001:10001 /rootfs/var/lib/nginx-agent /rootfs/var/log/nginx-agent

# ---- runtime ----
FROM scratch AS runtime
LABEL org.opencontainers.image.title="nginx-agent" \
      org.opencontainers.image.description="Monitoring agent for NGINX: host and NGINX metrics, config watching, Wasm plugins" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=rootfs /rootfs/ /
WORKDIR /opt/nginx-agent
COPY --from=deps /opt/nginx-agent/node_modules ./node_modules
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /src/config/agent.yaml ./config/agent.yaml
COPY --from=build /out/wasm-plugins ./wasm-plugins
COPY --from=build /out/etc/nginx-agent.yaml /etc/nginx-agent/nginx-agent.yaml

# The shipped config has the API on every interface of the container so Prometheus and the health
# check reach it. Anyone who can reach the port can then read /metrics and /v1/*: require a bearer
# token by mounting a secret and pointing api.token_file (or NGINX_AGENT_API_TOKEN_FILE) at it
# (never bake a token into the image).
ENV NODE_ENV=production \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
EXPOSE 8039
VOLUME ["/var/lib/nginx-agent"]

USER 10001:10001

# No curl here: Node's fetch asks /health (200 while running, 503 while starting or stopping).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.NGINX_AGENT_API_PORT||8039)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["node", "/opt/nginx-agent/bin/agent.js"]
CMD ["start", "--config", "/etc/nginx-agent/nginx-agent.yaml"]
