#!/usr/bin/env bash
# Checks the deployment files as far as a machine without a Docker engine or
# a running systemd can:
#  - deploy/docker-compose.yml parses, every path it references exists, every
#    service has a healthcheck, the ivschatd nodes share one config file and
#    the proxy's upstreams are the compose services;
#  - the Dockerfile builds with scripts/release.sh --one (the release build
#    command), has no go build of its own, and .dockerignore keeps what it
#    copies;
#  - deploy/systemd/ivschatd.service passes systemd-analyze verify, with
#    ExecStart pointed at the binary given as $1 (verify wants it to exist).
#
#   scripts/check-deploy.sh PATH/TO/ivschatd
# Needs /usr/bin/python3 with yaml (Debian: python3-yaml) and systemd-analyze
# (Debian: systemd).
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:?usage: $0 PATH/TO/ivschatd}

/usr/bin/python3 - <<'PY'
import os, re, sys, fnmatch
import yaml

problems = []
def bad(msg):
    problems.append(msg)

compose_path = "deploy/docker-compose.yml"
base = os.path.dirname(compose_path)
with open(compose_path) as f:
    compose = yaml.safe_load(f)
services = compose.get("services") or {}
if not services:
    bad(f"{compose_path}: no services")

nodes = {n: s for n, s in services.items() if s.get("image", "").startswith("ivschatd")}
if len(nodes) != 2:
    bad(f"{compose_path}: want two ivschatd nodes, found {sorted(nodes)}")
for want in ("postgres", "redis", "proxy"):
    if want not in services:
        bad(f"{compose_path}: no {want} service")

for name, svc in services.items():
    if "healthcheck" not in svc:
        bad(f"{compose_path}: service {name} has no healthcheck")
    build = svc.get("build")
    if build:
        ctx = os.path.normpath(os.path.join(base, build.get("context", ".")))
        df = os.path.join(ctx, build.get("dockerfile", "Dockerfile"))
        if not os.path.isdir(ctx):
            bad(f"{compose_path}: {name}: build context {ctx} does not exist")
        if not os.path.isfile(df):
            bad(f"{compose_path}: {name}: Dockerfile {df} does not exist")
    for vol in svc.get("volumes") or []:
        src = vol.split(":")[0] if isinstance(vol, str) else vol.get("source", "")
        if src.startswith((".", "/")):
            p = os.path.normpath(os.path.join(base, src))
            if not os.path.exists(p):
                bad(f"{compose_path}: {name}: volume source {p} does not exist")
        elif src and src not in (compose.get("volumes") or {}):
            bad(f"{compose_path}: {name}: named volume {src} is not declared")
    for dep in svc.get("depends_on") or {}:
        if dep not in services:
            bad(f"{compose_path}: {name} depends on unknown service {dep}")
    for net in svc.get("networks") or []:
        if net not in (compose.get("networks") or {}):
            bad(f"{compose_path}: {name}: network {net} is not declared")

configs = {n: [v for v in s.get("volumes", []) if isinstance(v, str) and v.endswith("/etc/ivschatd/cluster.json:ro")] for n, s in nodes.items()}
if len({tuple(v) for v in configs.values()}) != 1 or not all(configs.values()):
    bad(f"{compose_path}: the nodes do not mount one shared cluster.json: {configs}")
for n, s in nodes.items():
    if s.get("command", [])[:2] != ["--config", "/etc/ivschatd/cluster.json"]:
        bad(f"{compose_path}: {n} does not start with --config /etc/ivschatd/cluster.json")
    env = s.get("environment") or {}
    for k in ("IVSCHATD_POSTGRES_URL", "IVSCHATD_REDIS_URL"):
        if k not in env:
            bad(f"{compose_path}: {n} has no {k}")

# The proxy's upstreams are the nodes, on the port the image listens on.
with open("deploy/nginx.conf") as f:
    nginx = f.read()
upstreams = set(re.findall(r"^\s*server\s+([\w.-]+):(\d+)", nginx, re.M))
if upstreams != {(n, "8080") for n in nodes}:
    bad(f"deploy/nginx.conf: upstreams {sorted(upstreams)} are not the nodes {sorted(nodes)} on 8080")
for directive in ("proxy_http_version 1.1", "proxy_set_header Upgrade", "proxy_set_header Host $http_host"):
    if directive not in nginx:
        bad(f"deploy/nginx.conf: no '{directive}' (WebSockets / SigV4 need it)")

# The image builds with the release script, and with nothing else.
with open("Dockerfile") as f:
    dockerfile = f.read()
if not re.search(r"^RUN .*scripts/release\.sh --one ", dockerfile, re.M):
    bad("Dockerfile: does not build with scripts/release.sh --one")
if re.search(r"\bgo build\b", dockerfile):
    bad("Dockerfile: has a go build of its own; use scripts/release.sh --one")
for needed in ("HEALTHCHECK", "VOLUME /data", "EXPOSE 8080", "USER 65532"):
    if needed not in dockerfile:
        bad(f"Dockerfile: no {needed}")
ignored = [l.strip() for l in open(".dockerignore") if l.strip() and not l.startswith("#")]
copied = ["go.mod", "go.sum", "scripts/release.sh", "cmd/ivschatd/main.go", "internal/server/server.go",
          "LICENSE", "NOTICE", "THIRD_PARTY_LICENSES.md"]
for line in re.findall(r"^COPY (?!--from)(.*)$", dockerfile, re.M):
    for src in line.split()[:-1]:
        if src != "." and not os.path.exists(src):
            bad(f"Dockerfile: COPY source {src} does not exist")
for p in copied:
    for pat in ignored:
        if fnmatch.fnmatch(p, pat.rstrip("/")) or p.startswith(pat.rstrip("/") + "/"):
            bad(f".dockerignore: {pat} leaves {p} out of the build context")

if problems:
    print("\n".join(problems), file=sys.stderr)
    sys.exit(1)
print(f"deploy: {compose_path} ({len(services)} services), Dockerfile, .dockerignore, nginx.conf: ok")
PY

# systemd-analyze verify wants ExecStart's binary to exist: verify a copy of
# the unit (same name, for the unit-name checks) that points at $bin.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#^ExecStart=/usr/local/bin/ivschatd #ExecStart=$(realpath "$bin") #" deploy/systemd/ivschatd.service >"$tmp/ivschatd.service"
grep -q "^ExecStart=$(realpath "$bin") " "$tmp/ivschatd.service" || { echo "ivschatd.service: no ExecStart=/usr/local/bin/ivschatd line" >&2; exit 1; }
# verify prints its findings and exits 0 on some of them: any output fails.
out=$(systemd-analyze verify "$tmp/ivschatd.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
	echo "systemd-analyze verify deploy/systemd/ivschatd.service:" >&2
	echo "$out" >&2
	exit 1
fi
echo "deploy: systemd-analyze verify deploy/systemd/ivschatd.service: ok"
