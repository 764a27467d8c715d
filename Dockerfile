# canarybot's image, for those who build with Docker:
#   docker build -t ghcr.io/canarybot/canarybot:dev --build-arg VERSION=dev .
# `make image` builds the same image without Docker (internal/imagebuild):
# the static binary (no cgo) as /usr/local/bin/canarybot, its entrypoint,
# run as nonroot 65532, with a CA bundle; distroless/static adds tzdata.
# (This file is not built in CI, which has no Docker; make image is tested.)

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -tags kustomize_disable_go_plugin_support -trimpath \
	-ldflags "-s -w -X main.version=${VERSION}" -o /out/canarybot ./cmd/canarybot

FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
LABEL org.opencontainers.image.title=canarybot \
	org.opencontainers.image.description="Progressive delivery of ML models through Git and Argo CD" \
	org.opencontainers.image.source=https://github.com/canarybot/canarybot \
	org.opencontainers.image.version=${VERSION}
COPY --from=build /out/canarybot /usr/local/bin/canarybot
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/canarybot"]
