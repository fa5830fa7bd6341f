# syntax=docker/dockerfile:1
# ivschatd container image: the release build of ivschatd (scripts/release.sh
# --one, the same command as the release binaries) on distroless static,
# running as the nonroot user (65532) with its data in the /data volume.
#
#   docker build --build-arg VERSION=$(git describe --tags --always --dirty) \
#                --build-arg COMMIT=$(git rev-parse HEAD) -t ivschatd .
#   docker run -p 8080:8080 -v ivschatd-data:/data ivschatd
#
# The Go version here must be the one the release binaries are built with for
# the image's binary to be byte-identical to dist/ivschatd-linux-<arch>.

FROM --platform=$BUILDPLATFORM golang:1.26.8-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION="(devel)"
ARG COMMIT=unknown
ARG TARGETOS=linux
ARG TARGETARCH=amd64
RUN VERSION="$VERSION" COMMIT="$COMMIT" scripts/release.sh --one "$TARGETOS/$TARGETARCH" ivschatd /out/ivschatd \
	&& mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ivschatd /usr/local/bin/ivschatd
COPY LICENSE NOTICE THIRD_PARTY_LICENSES.md /usr/share/doc/ivschatd/
# An empty /data owned by nonroot, so a new named volume starts writable.
COPY --from=build --chown=65532:65532 /out/data /data
ENV IVSCHATD_DATA_DIR=/data \
	IVSCHATD_LISTEN=0.0.0.0:8080 \
	IVSCHATD_LOG_FORMAT=json
VOLUME /data
EXPOSE 8080
USER 65532:65532
# No shell or curl in the image: the binary probes itself. /readyz is 503
# while the node cannot serve (PostgreSQL or Redis unreachable in cluster mode).
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s --retries=3 \
	CMD ["/usr/local/bin/ivschatd", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"]
# ivschatd is PID 1: it handles SIGTERM (docker stop) itself, closing chat
# connections with 1001 and draining within --shutdown-timeout; give docker
# stop at least that long (docker stop -t, compose stop_grace_period).
ENTRYPOINT ["/usr/local/bin/ivschatd"]
