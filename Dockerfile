# tumblerd as a sidecar: reads the host's kernel log and changes the host's firewall (host
# network). See the README for the run lines per log source and compose.yaml.
# The build steps are the README's install steps: npm ci, npm run build.
ARG BASE=node:20-bookworm-slim
FROM $BASE AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY config ./config
COPY scripts ./scripts
RUN npm run build && npm prune --omit=dev

FROM $BASE
# tini is PID 1: it forwards SIGTERM to tumblerd from the first instant and reaps the orphans
# that door commands leave behind.
RUN apt-get update \
 && apt-get install -y --no-install-recommends iptables ipset nftables tini \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/tumbler
COPY --from=build /src/package.json ./
COPY --from=build /src/node_modules ./node_modules
COPY --from=build /src/dist ./dist
COPY --from=build /src/config ./config
COPY packaging/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
RUN ln -s /opt/tumbler/dist/cli/tumblerd.js /usr/local/bin/tumblerd \
 && ln -s /opt/tumbler/dist/cli/tumbler.js /usr/local/bin/tumbler \
 && mkdir -p /etc/tumblerd \
 && cp config/tumblerd.yaml config/tumblerd.schema.json /etc/tumblerd/
# Root inside the container: iptables needs it even with NET_ADMIN; the capabilities granted at
# run time (NET_ADMIN, NET_RAW, and SYSLOG for kmsg) bound what that root can do.
# Mount a folder on /etc/tumblerd, not a file: an editor's save by rename is then seen.
VOLUME /var/lib/tumblerd
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s CMD ["tumblerd", "status", "--config", "/etc/tumblerd/tumblerd.yaml"]
ENTRYPOINT ["/usr/bin/tini", "--", "docker-entrypoint.sh"]
CMD ["--config", "/etc/tumblerd/tumblerd.yaml"]
