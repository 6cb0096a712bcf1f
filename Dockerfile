# NGINX agent image: multi-stage build on the official Node.js 20 LTS images (Debian bookworm).
#   docker build -t nginx-agent:0.1.0 .
# Run it next to nginx: see examples/sidecar/ (compose file and Kubernetes pod spec).
#
# Mount points:
#   /etc/nginx-agent/nginx-agent.yaml   the config (else the embedded defaults in config/agent.yaml)
#   /var/lib/nginx-agent/plugins        Wasm plugins, one folder each (plugin.yaml + .wasm), loaded
#                                       beside the shipped examples in /opt/nginx-agent/wasm-plugins
# The image was written and checked for structure here, but not built in CI: no Docker engine runs there.

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
 && mkdir -p /out/wasm-plugins \
 && for d in wasm-plugins/*/; do \
      [ -f "$d/plugin.yaml" ] || continue; \
      n=$(basename "$d"); \
      ls "$d"*.wasm >/dev/null 2>&1 || { echo "wasm-plugins/$n: no .wasm built (the C example needs clang), left out"; continue; }; \
      mkdir -p "/out/wasm-plugins/$n"; \
      cp "$d/plugin.yaml" "$d"*.wasm "/out/wasm-plugins/$n/"; \
    done

# ---- deps: production dependencies only ----
FROM ${NODE_IMAGE} AS deps
WORKDIR /opt/nginx-agent
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# ---- runtime ----
FROM ${NODE_IMAGE} AS runtime
LABEL org.opencontainers.image.title="nginx-agent" \
      org.opencontainers.image.description="Monitoring agent for NGINX: host and NGINX metrics, config watching, Wasm plugins" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 nginx-agent \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/nginx-agent --shell /usr/sbin/nologin nginx-agent \
 && mkdir -p /etc/nginx-agent /var/lib/nginx-agent/plugins /var/log/nginx-agent \
 && chown -R 10001:10001 /var/lib/nginx-agent /var/log/nginx-agent
WORKDIR /opt/nginx-agent
COPY --from=deps /opt/nginx-agent/node_modules ./node_modules
COPY --from=build /src/package.json /src/package-lock.json ./
COPY --from=build /src/bin ./bin
COPY --from=build /src/dist ./dist
COPY --from=build /src/config/agent.yaml ./config/agent.yaml
COPY --from=build /out/wasm-plugins ./wasm-plugins

# The API listens on every interface of the container so Prometheus and the health check reach it.
# Anyone who can reach the port can then read /metrics and /v1/*: require a bearer token by mounting
# a secret and pointing NGINX_AGENT_API_TOKEN_FILE at it (never bake a token into the image).
ENV NODE_ENV=production \
    NGINX_AGENT_API_HOST=0.0.0.0 \
    NGINX_AGENT_API_PORT=8039 \
    NGINX_AGENT_LOG_FORMAT=json
EXPOSE 8039

USER 10001:10001

# slim has no curl: Node's fetch asks /health (200 while running, 503 while starting or stopping).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.NGINX_AGENT_API_PORT||8039)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

ENTRYPOINT ["node", "/opt/nginx-agent/bin/agent.js"]
# The shipped example plugins and the mounted ones (--plugins-dir replaces the default, so both are named).
CMD ["start", "--plugins-dir", "/opt/nginx-agent/wasm-plugins", "--plugins-dir", "/var/lib/nginx-agent/plugins"]
